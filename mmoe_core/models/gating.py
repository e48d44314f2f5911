"""Gates: masked softmax, noisy top-k (Shazeer et al. 2017, §2.1) and the balancing losses (§4, App. A).

A gate turns logits into weights over the experts it may use. Masked experts get logit -inf, so their weight
is exactly 0 (CGC/PLE: a task's gate sees its own experts and the shared ones). Noisy top-k adds trainable
noise, keeps the k largest logits and softmaxes those:

    H(x)_i = (x W_g)_i + ε_i · softplus((x W_noise)_i),   ε ~ N(0, 1) (training only)
    G(x)   = softmax(KeepTopK(H(x), k))

Balancing losses, each a squared coefficient of variation (CV² = variance / mean²) over a gate's experts:
importance_e = Σ_batch G(x)_e, and load_e = Σ_batch P(x, e), the smooth probability that expert e stays in the
top k when the noise is redrawn (Shazeer App. A, Eq. 8-10). A uniform router scores 0, a collapsed one
scores (n - 1) for n experts.

Shapes: r replicas, b batch, g gates, e experts. Every function works on any leading axes (..., b, g, e).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

EPS = 1e-10  # keeps CV² finite when every weight is 0 (as tensor2tensor's cv_squared does)


def masked_logits(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Logits of experts a gate may not use -> -inf. mask: (g, e) bool, broadcast over (..., b, g, e)."""
    return logits if mask is None else logits.masked_fill(~mask, float("-inf"))


FAST_SOFTMAX_BELOW = 16  # experts per row under which exp / sum beats ATen's CPU softmax
CPU_FORMS = True  # False: a CPU computes gates and mixtures in the forms a GPU runs (tests/test_device.py)


def cpu_forms(t: torch.Tensor) -> bool:
    """Whether work on t takes the CPU-tuned forms (this softmax, mixture._mix's padding, OMoE's mixture as a
    product and sum). Every device-dependent form asks here, so a CPU-only test can run the GPU's forms too."""
    return CPU_FORMS and t.device.type == "cpu"


def softmax(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the last (expert) axis; -inf logits give exactly 0. ATen's CPU kernel vectorises across a
    row, so rows shorter than 16 (the paper's 8 experts) take it 2-4x longer, forward and backward, than
    exp / sum; subtracting the detached max keeps exp finite and the gradient exact. From 16 experts on, and
    off the CPU, ATen's kernel is the faster."""
    if logits.shape[-1] >= FAST_SOFTMAX_BELOW or not cpu_forms(logits):
        return torch.softmax(logits, dim=-1)
    z = torch.exp(logits - logits.detach().amax(dim=-1, keepdim=True))
    return z / z.sum(dim=-1, keepdim=True)


def noise_generator(
    cache: dict[torch.device, list[torch.Generator]], device: torch.device, seed: int | Sequence[int], replicas: int
) -> list[torch.Generator]:
    """The gate noise's own generators on `device` (kept in `cache`), one per replica seeded from seed + r alone:
    never the global RNG, so noisy gates do not shift the data or initialisation draws, and replica r of a
    batched run draws exactly what a single run with seed + r draws."""
    if device not in cache:
        cache[device] = replica_generators(seed, replicas, device)
    return cache[device]


def top_k_mask(h: torch.Tensor, k: int) -> torch.Tensor:
    """True at the k largest entries of each row (exactly k, ties broken by position)."""
    idx = h.topk(min(k, h.shape[-1]), dim=-1).indices
    return torch.zeros_like(h, dtype=torch.bool).scatter_(-1, idx, True)


def noisy_top_k(
    clean: torch.Tensor,
    noise_logits: torch.Tensor | None = None,
    top_k: int = 0,
    mask: torch.Tensor | None = None,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Gate weights from logits: masked, optionally noisy, optionally sparse.

    clean: (..., g, e) x W_g. noise_logits: x W_noise of the same shape, or None for no noise (evaluation, or
    a gate without noise). top_k: 0 keeps every allowed expert (a dense softmax). Returns (weights, noisy
    logits H, noise sd or None); a row keeps min(k, allowed experts) non-zero weights. generator: one, or one per
    replica (a sequence as long as the leading axis r): replica i then draws only from its own, as it would in a
    single run with its seed.
    """
    clean = masked_logits(clean, mask)
    std = None
    h = clean
    if noise_logits is not None:
        std = F.softplus(noise_logits) + 1e-2  # Shazeer's noise_epsilon: the load estimator divides by it
        eps = _normal(clean, generator)
        h = clean + eps * std  # -inf stays -inf
    if top_k and top_k < clean.shape[-1]:
        h_kept = h.masked_fill(~top_k_mask(h, top_k), float("-inf"))
    else:
        h_kept = h
    return softmax(h_kept), h, std


def _normal(like: torch.Tensor, generator: torch.Generator | Sequence[torch.Generator] | None) -> torch.Tensor:
    """N(0, 1) noise shaped like `like`; with one generator per replica, replica i's slice from generator i."""
    if generator is None or isinstance(generator, torch.Generator):
        return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)
    if len(generator) != like.shape[0]:
        raise ValueError(f"{len(generator)} noise generators for {like.shape[0]} replicas; give one per replica")
    return torch.stack(  # a loop over replicas, not experts: each seed's stream must not depend on the others
        [torch.randn(like.shape[1:], generator=g, device=like.device, dtype=like.dtype) for g in generator]
    )


def replica_seeds(seed: int | Sequence[int], replicas: int) -> list[int]:
    """Each replica's own seed: seed + r, or the list given (a p-sweep repeats its seeds at every p,
    RunConfig.replica_seeds). Everything random about replica r derives from this seed alone."""
    if isinstance(seed, int):
        return [seed + r for r in range(replicas)]
    seeds = [int(s) for s in seed]
    if len(seeds) != replicas:
        raise ValueError(f"{len(seeds)} replica seeds for {replicas} replicas")
    return seeds


def replica_generators(seed: int | Sequence[int], replicas: int, device: torch.device) -> list[torch.Generator]:
    """Gate-noise generators, replica r seeded from its own seed alone (never the global RNG), so replica r of
    a batched run draws exactly what a single run with that seed draws."""
    return [torch.Generator(device=device).manual_seed(s * 7_919 + 3) for s in replica_seeds(seed, replicas)]


def cv_squared(v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """CV² = var / mean² over the last axis (population variance), over masked-in entries only."""
    if mask is None:
        mean = v.mean(dim=-1)
        var = (v - mean.unsqueeze(-1)).square().mean(dim=-1)
        return var / (mean.square() + EPS)
    m = mask.to(v.dtype)
    n = m.sum(dim=-1).clamp_min(1.0)
    mean = (v * m).sum(dim=-1) / n
    var = ((v - mean.unsqueeze(-1)).square() * m).sum(dim=-1) / n
    return var / (mean.square() + EPS)


def importance_loss(weights: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Σ over gates of CV²(importance), importance_e = Σ_b G_e. weights: (..., b, g, e) -> (...)."""
    importance = weights.sum(dim=-3)  # (..., g, e)
    return cv_squared(importance, mask).sum(dim=-1)


def load_loss(
    clean: torch.Tensor, noisy: torch.Tensor, std: torch.Tensor, top_k: int, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Σ over gates of CV²(load), the smooth load estimator of Shazeer et al. 2017, App. A.

    P(x, e) = Φ((clean_e - kth_excluding(H, k, e)) / std_e): the chance that expert e stays in the top k
    if only its own noise were redrawn. kth_excluding is the k-th largest of the other experts' noisy
    logits: the (k+1)-th largest of H when e is in the top k, else the k-th. All (..., b, g, e) -> (...).
    """
    e = noisy.shape[-1]
    k = min(top_k, e - 1)
    top = noisy.topk(k + 1, dim=-1).values  # (..., b, g, k+1)
    in_threshold, out_threshold = top[..., k : k + 1], top[..., k - 1 : k]  # (..., b, g, 1)
    is_in = noisy > in_threshold  # strictly above the (k+1)-th: in the top k
    threshold = torch.where(is_in, in_threshold, out_threshold)
    z = (clean - threshold) / std  # clean, not masked: -inf here would make a NaN gradient
    prob = 0.5 * torch.erfc(-z / math.sqrt(2.0))  # Φ(z)
    if mask is not None:
        prob = prob * mask  # a masked expert is never chosen
    load = prob.sum(dim=-3)  # (..., g, e)
    return cv_squared(load, mask).sum(dim=-1)


def balance_loss(
    weights: torch.Tensor,
    clean: torch.Tensor | None = None,
    noisy: torch.Tensor | None = None,
    std: torch.Tensor | None = None,
    top_k: int = 0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Importance CV², plus load CV² when the gate is noisy and sparse (the load is only smooth then)."""
    loss = importance_loss(weights, mask)
    allowed = weights.shape[-1] if mask is None else int(mask.sum(dim=-1).min())
    if std is not None and clean is not None and noisy is not None and 0 < top_k < allowed:
        loss = loss + load_loss(clean, noisy, std, top_k, mask)
    return loss
