"""What each expert learned, on synthetic data (issue #17 item 2).

Each synthetic task's label depends on x only through w_kᵀx (its linear term and every sine term), so an expert
serves task k exactly to the degree its first-layer weights respond to the direction w_k. For expert i with
first-layer weights W_i (d, h):

    a_ik = ‖W_iᵀ w_k‖² / Σ_j ‖W_iᵀ w_j‖²        (its alignment; sums to 1 over tasks)
    A_k  = Σ_i g_ik a_ik,   ā_k = mean_i a_ik      (task k's gate-weighted and plain mean alignment)
    S    = mean_k (A_k − ā_k)                      (routing specialisation)

S > 0 when each task's gate picks the experts that carry its direction. It is 0 for a single gate (OMoE: the
gate weights are the same for every task and the a_ik sum to 1) and 0 at p = 1 (w_1 = w_2, every a_ik = 1/K).
It is computed as mean_k Σ_i (g_ik − 1/n)(a_ik − 1/K), which equals the definition because each task's gate
weights sum to 1, and is exactly 0 at p = 1, where every a_ik − 1/K is 0."""

from __future__ import annotations

import torch

from .models import MixtureModel


def has_specialisation(model: torch.nn.Module) -> bool:
    """A gated mixture whose first layer is one bank of experts (MMoE, OMoE and their gate variants)."""
    return isinstance(model, MixtureModel) and model.spec.gated


def expert_alignment(model: MixtureModel, directions: torch.Tensor) -> torch.Tensor:
    """(r, e, k) a_ik per replica. directions: (q, d, k) task directions w_k per data draw; q = 1 (shared data)
    or q = r (each seed its own draw)."""
    w_in = model.expert_in_w.detach()  # (r, d, e*h)
    r, d, eh = w_in.shape
    e = model.spec.n_experts
    dirs = directions.to(device=w_in.device, dtype=torch.float64)
    dirs = dirs.expand(r, -1, -1) if dirs.shape[0] == 1 else dirs  # (r, d, k)
    response = torch.einsum("rdeh,rdk->rekh", w_in.double().reshape(r, d, e, eh // e), dirs).pow(2).sum(-1)
    return response / response.sum(-1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)  # (r, e, k)


def routing_specialisation(gates: torch.Tensor, alignment: torch.Tensor, n_gates: int) -> torch.Tensor:
    """(r,) S per replica. gates: (r, k, e) each task's mean gate weights over the probe rows; alignment:
    (r, e, k). One gate shared by every task gives 0 by construction (returned exactly)."""
    r, k, e = gates.shape
    if n_gates == 1:
        return torch.zeros(r, dtype=torch.float64)
    centred_gates = gates.double() - 1.0 / e  # (r, k, e)
    centred_alignment = alignment.double().transpose(1, 2) - 1.0 / k  # (r, k, e)
    return (centred_gates * centred_alignment).sum(-1).mean(-1).cpu()


def reading(model_label: str, per_seed: list[float]) -> str:
    """One sentence for students about a model's latest S over its seeds."""
    s = [v for v in per_seed if v == v]  # finite seeds only (a diverged seed records NaN)
    if not s:
        return f"{model_label}: no routing specialisation recorded yet."
    mean, positive = sum(s) / len(s), sum(v > 0 for v in s)
    seeds = f" ({positive} of {len(s)} seeds above 0)" if len(s) > 1 else ""
    if mean > 0 and positive * 2 > len(s):
        return (
            f"{model_label}: S = {mean:.4f}{seeds}: each task's gate leans towards the experts that respond to "
            "its own direction w_k."
        )
    if mean == 0 and all(v == 0 for v in s):
        return f"{model_label}: S = 0: its gates cannot tell the tasks apart (one shared gate, or identical tasks)."
    return f"{model_label}: S = {mean:.4f}{seeds}: no consistent preference for each task's own experts yet."
