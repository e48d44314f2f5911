"""Replica slices: the same model over replicas [r0, r1), sharing the full model's weights and gradients.

Why: a study trains hundreds of replicas as one computation, and on a CPU such a step streams every activation
through main memory several times; the profile is dominated by elementwise ops (ReLU and its backward, the
gate products, copies), not by the matmuls (bench/RESULTS.md, "Studies near the matmul limit"). Forward and
backward over slices of a few dozen replicas keep their activations in the CPU's caches.

A slice's parameters are views of the full model's, and their .grad views of the full .grad (itself a view of
the trainer's flat gradient), so backward adds into the flat gradient in place and one optimizer step then
updates every replica. Replica i of a slice is replica r0 + i of the full model in everything: weights, seed,
gate-noise generator (the same generator object, so its stream continues across slices and steps).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from . import gating

# Floats of live activations per replica chunk in a CPU step, about an L3 cache (32 MB). Paper-scale study,
# 600 replicas (bench/bench_study_step.py): chunks of 12-13, 25, 50 and 100 replicas all ran 1.8-2.0x the
# one-pass step, within the run-to-run noise of each other; this picks 50 for the paper's models.
CHUNK_FLOATS = 8_000_000


def _slice_module(module: nn.Module, r0: int, r1: int) -> nn.Module:
    clone = copy.copy(module)  # a new __dict__ whose values (the parameter and module dicts) are still shared
    params = {}
    for name, p in module._parameters.items():
        if p is None:
            params[name] = None
            continue
        if p.grad is None:
            raise ValueError("replica_slice needs the full model's gradients allocated (flatten_parameters)")
        view = nn.Parameter(p.detach()[r0:r1], requires_grad=p.requires_grad)  # shares p's storage
        view.grad = p.grad[r0:r1]  # backward accumulates into the full gradient in place
        params[name] = view
    clone.__dict__["_parameters"] = params
    clone.__dict__["_modules"] = {n: _slice_module(m, r0, r1) for n, m in module._modules.items()}
    return clone


def replica_slice(model: nn.Module, r0: int, r1: int) -> nn.Module:
    """A MixtureModel or PLEModel over replicas [r0, r1) of `model`, for training steps (see the module doc).

    Buffers (routes, gate masks) carry no replica axis and are shared. The slice keeps the training flag
    `model` had when it was made."""
    if not 0 <= r0 < r1 <= model.replicas:
        raise ValueError(f"replica slice [{r0}, {r1}) is outside the model's {model.replicas} replicas")
    clone = _slice_module(model, r0, r1)
    clone.replicas = r1 - r0
    clone.seed = gating.replica_seeds(model.seed, model.replicas)[r0:r1]
    if model.spec.gate_noise:  # share the full model's generators, so noise draws continue where they are
        device = next(model.parameters()).device
        gens = gating.noise_generator(model._noise_gen, device, model.seed, model.replicas)
        clone._noise_gen = {device: gens[r0:r1]}
    else:
        clone._noise_gen = {}
    return clone


def replica_chunks(replicas: int, size: int) -> list[tuple[int, int]]:
    """[r0, r1) ranges of at most `size` replicas covering 0..replicas, as equal as possible."""
    n = max(1, -(-replicas // max(1, size)))
    bounds = [round(i * replicas / n) for i in range(n + 1)]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def activation_floats_per_replica(model: nn.Module, batch: int) -> int:
    """A rough count of the floats one replica's training step keeps alive (forward outputs kept for backward):
    used to choose how many replicas fit in cache at once."""
    spec = model.spec
    e, k = spec.n_experts, spec.n_tasks
    widths = sum(spec.expert_units) * e * 2  # pre-activation and ReLU output of each expert layer
    widths += (max(spec.n_gates, 1) * e) * 3  # logits, exp, weights
    widths += k * (spec.expert_units[-1] + sum(spec.tower_units) * 2 + 1)  # mixtures and towers
    levels = getattr(spec, "levels", 1)
    return batch * (widths * levels + spec.input_dim)


def plan_chunks(
    models: list[nn.Module], replicas: int, batch: int, device: torch.device, size: int | None
) -> list[tuple[int, int]]:
    """The replica ranges a training step runs one at a time: `size` replicas each (0: one pass), or, for
    None, as many as fit CHUNK_FLOATS on a CPU (off a CPU, one pass: a GPU wants the biggest kernels)."""
    if size is None:
        if device.type != "cpu" or not models:
            return [(0, replicas)]
        size = max(1, CHUNK_FLOATS // max(activation_floats_per_replica(m, batch) for m in models))
    if size <= 0 or size >= replicas:
        return [(0, replicas)]
    return replica_chunks(replicas, size)


__all__ = ["CHUNK_FLOATS", "activation_floats_per_replica", "plan_chunks", "replica_chunks", "replica_slice"]
