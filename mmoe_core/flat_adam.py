"""Adam over the trainer's one flat parameter tensor, without constructing torch.optim.Adam.

torch.optim.Adam's constructor imports torch._dynamo (0.9-1.2 s on an idle 2-core machine, more on a busy one;
issue #18), which every CLI run and every Playground worker paid before its first step. FlatAdam calls the
same fused kernel that `torch.optim.Adam(fused=True)` calls, with the same state, so the weights it produces
are bit-identical (tests/test_flat_adam.py); devices without the fused kernel keep torch.optim.Adam."""

from __future__ import annotations

import torch
from torch import nn

FUSED_DEVICES = ("cpu", "cuda")


Ranges = list[tuple[int, int]]


class FlatAdam:
    """Adam (no weight decay, no AMSGrad) for one parameter tensor whose .grad is filled by backward.

    `groups` gives ranges of the tensor their own rate ([(lr, [(start, stop), ...]), ...], covering it once):
    a learning-rate sweep trains each replica at its rate in one update, one fused call per rate, and Adam is
    elementwise, so each range moves exactly as a tensor of its own would (tests/test_flat_adam.py)."""

    def __init__(
        self,
        param: torch.Tensor,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        groups: list[tuple[float, Ranges]] | None = None,
    ):
        self.param, self.lr, self.betas, self.eps = param, float(lr), betas, eps
        self.groups = groups or [(float(lr), [(0, param.numel())])]
        covered = sorted(r for _, ranges in self.groups for r in ranges)
        if (
            [a for a, _ in covered[1:]] != [b for _, b in covered[:-1]]
            or covered[0][0] != 0
            or covered[-1][1] != param.numel()
        ):
            raise ValueError("FlatAdam groups must cover the parameter exactly once")
        self._fallback: torch.optim.Optimizer | None = None
        if param.device.type not in FUSED_DEVICES:  # e.g. MPS: the fused kernel is not built there
            if groups:
                raise ValueError(f"a learning-rate sweep needs the fused Adam kernel, which {param.device.type} lacks")
            self._fallback = torch.optim.Adam([param], lr=lr, betas=betas, eps=eps, foreach=True)
            return
        self.exp_avg = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.exp_avg_sq = torch.zeros_like(param, memory_format=torch.preserve_format)
        # torch.optim.Adam(fused=True) keeps the step count as a float32 tensor on the parameter's device
        self.state_step = torch.zeros((), dtype=torch.float32, device=param.device)
        self._views: list = []  # per rate group: (lr, views of param, grad, exp_avg, exp_avg_sq)
        self._views_of: torch.Tensor | None = None

    def _slices(self, ranges: Ranges, grad: torch.Tensor) -> tuple[list[torch.Tensor], ...]:
        """Views of the parameter, its gradient and the two moments over `ranges`: the fused call's lists."""
        tensors = (self.param, grad, self.exp_avg, self.exp_avg_sq)
        return tuple([t[a:b] for a, b in ranges] for t in tensors)

    @torch.no_grad()
    def step(self) -> None:
        if self._fallback is not None:
            self._fallback.step()
            return
        grad = self.param.grad
        if grad is None:
            return
        self.state_step += 1
        if self._views_of is not grad:  # once in training: backward fills the same .grad in place every step
            self._views = [(lr, *self._slices(ranges, grad)) for lr, ranges in self.groups]
            self._views_of = grad
        for lr, params, grads, avgs, squares in self._views:
            torch._fused_adam_(
                params,
                grads,
                avgs,
                squares,
                [],
                [self.state_step] * len(params),
                amsgrad=False,
                lr=lr,
                beta1=self.betas[0],
                beta2=self.betas[1],
                weight_decay=0.0,
                eps=self.eps,
                maximize=False,
            )


def rate_groups(
    params: list[nn.Parameter], replicas: int, per_rate: int, rates: tuple[float, ...]
) -> list[tuple[float, Ranges]]:
    """A rate sweep's Adam groups over flatten_parameters' layout: per rate, the (start, stop) ranges that its
    replicas own. Every parameter leads with the replica axis, so one replica block of a parameter is one
    contiguous range; each rate's `per_rate` replicas are consecutive (RunConfig.replica_lr)."""
    groups: list[tuple[float, Ranges]] = [(lr, []) for lr in rates]
    offset = 0
    for p in params:
        if p.shape[0] != replicas:
            raise ValueError(f"a parameter of shape {tuple(p.shape)} has no leading replica axis of {replicas}")
        block = p.numel() // replicas
        for i, (_, ranges) in enumerate(groups):
            ranges.append((offset + i * per_rate * block, offset + (i + 1) * per_rate * block))
        offset += p.numel()
    return groups


def flatten_parameters(params: list[nn.Parameter]) -> nn.Parameter:
    """Re-home every parameter and its gradient as views of one flat tensor and return that tensor.

    Autograd still sees the separate parameters (backward accumulates into their .grad views in place), while
    the optimizer sees a single tensor: its per-parameter Python bookkeeping (~0.2 ms per model per step on
    CPU, a tenth of a small model's step) is paid once. Parameters left out of a step get a zero gradient."""
    flat = nn.Parameter(torch.cat([p.detach().reshape(-1) for p in params]))
    flat.grad = torch.zeros_like(flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.data = flat.data[offset : offset + n].view_as(p)
        p.grad = flat.grad[offset : offset + n].view_as(p)
        offset += n
    return flat
