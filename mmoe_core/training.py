"""Trainer: every chosen model on the same mini-batches, in lock-step, all seeds at once.

The core exposes `step()` and `evaluate()`; `run()` is a plain loop that a worker process, the CLI or a test
drives, with callbacks for recording and a cancel check. No host-device sync happens between log steps:
losses accumulate on the device and are read back only when a point is recorded. On a CPU, many replicas
(a study) train, evaluate and probe in cache-sized chunks of the replica axis (models/replica_slice.py).

Shapes: r replicas (seeds), q data replicas (1 or r), n rows, b batch, d input, k tasks, e experts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import RunConfig
from .data import TaskData
from .flat_adam import FlatAdam, flatten_parameters, rate_groups
from .models import MixtureModel, build_model
from .models.replica_slice import CHUNK_FLOATS, plan_chunks, replica_slice
from .probes import GateRow, MetricRow, Probes, long_rows
from .weighting import make_weighting


def resolve_device(name: str) -> torch.device:
    """'auto' takes CUDA when present; asking for CUDA without it is a clear error, not a crash later."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but this machine has no CUDA GPU; choose 'auto' or 'cpu'")
    return torch.device(name)


@dataclass
class ModelResult:
    name: str
    params: int
    paper_params: int
    status: str = "running"  # running -> done | diverged | cancelled
    message: str = ""
    seconds: float = 0.0
    diverged_replicas: list[int] = field(default_factory=list)
    test_loss: np.ndarray | None = None  # (r, k)
    test_auc: np.ndarray | None = None  # (r, k), binary tasks only (NaN for regression tasks)
    grad_agreement: np.ndarray | None = None  # (r, pairs) at the last recorded point (mmoe_core.gradients)
    routing_specialisation: np.ndarray | None = None  # (r,) at the last recorded point (mmoe_core.specialisation)


@dataclass
class LogRecord:
    """What one recorded point adds to the store."""

    step: int
    metrics: list[MetricRow]
    gates: list[GateRow]
    status_changes: list[ModelResult]
    alignment: list[GateRow] = field(default_factory=list)  # (model, step, task, expert, a_ik), first seed


class Trainer(Probes):
    def __init__(
        self,
        config: RunConfig,
        data: TaskData,
        device: torch.device | str | None = None,
        replica_chunk: int | None = None,
    ):
        """replica_chunk: replicas per forward/backward pass of a step; None chooses (slices of the replica
        axis on a CPU, so activations stay in cache: mmoe_core.models.replica_slice), 0 turns chunking off.
        Results equal the unchunked step to float32 rounding (tests/test_replica_slice.py)."""
        self.config = config
        self.device = resolve_device(config.device) if device is None else torch.device(device)
        if data.replicas not in (1, config.data_replicas):
            raise ValueError(
                f"data has {data.replicas} replicas; expected 1 or {config.data_replicas} (seeds x p values)"
            )
        self.data = data.to(self.device)
        self.kinds = torch.tensor([t == "binary" for t in data.task_kinds], device=self.device)  # (k,)
        self._any_binary = "binary" in data.task_kinds  # a Python bool: reading self.kinds would sync the GPU
        self.models: dict[str, MixtureModel] = {}
        self.results: dict[str, ModelResult] = {}
        for name in config.models:
            model = build_model(name, config, input_dim=data.input_dim, n_tasks=data.n_tasks).to(self.device)
            self.models[name] = model
            self.results[name] = ModelResult(name, model.num_params(), model.num_params(paper=True))
        # One Adam over every model: Adam is elementwise, so this equals one optimizer per model, and the
        # lock-step models then share one backward pass and one fused update over one flat tensor
        # (bench/RESULTS.md: with the other step changes, lock-step went from 2.73x to 3.0-3.1x torch-rechub).
        # Loss weighting (mmoe_core.weighting): its learned weights train with the models' Adam.
        self.weighting = make_weighting(config.weighting, self.models, data.n_tasks, config.replica_seeds())
        params = [p for m in self.models.values() for p in m.parameters()] + self.weighting.parameters()
        self._flat = flatten_parameters(params)
        # torch's fused Adam kernel, without torch._dynamo; a rate sweep gives each replica block its own rate
        groups = (
            rate_groups(params, config.replicas, config.data_replicas, config.sweep_lr) if config.sweep_lr else None
        )
        self.optimizer = FlatAdam(self._flat, lr=config.lr, groups=groups)
        # Equal weighting only: the other methods keep per-replica state outside the models (learned task
        # weights) or run their own backward over all replicas, which chunks would have to split as well.
        self._chunks = (
            plan_chunks(
                list(self.models.values()),
                config.replicas,
                min(config.batch_size, data.n_train),
                self.device,
                replica_chunk,
            )
            if config.weighting == "equal"
            else [(0, config.replicas)]
        )
        self._slices = {  # the model itself when it runs in one pass
            n: [replica_slice(m, a, b) for a, b in self._chunks] if len(self._chunks) > 1 else [m]
            for n, m in self.models.items()
        }
        # the probes that show one seed (gate heatmaps, diagnostics) compute that seed alone
        self._first = {n: replica_slice(m, 0, 1) if config.replicas > 1 else m for n, m in self.models.items()}
        self.step_count = 0
        r = config.replicas
        self._batch_gens = [torch.Generator().manual_seed(s * 7_919 + 17) for s in config.replica_seeds()]
        self._perm: torch.Tensor | None = None  # (r, n) this epoch's order per replica
        self._perm_pos = 0
        self._window = {n: torch.zeros(r, data.n_tasks, device=self.device) for n in self.models}  # (r, k)
        self._window_steps = 0
        self._replica_idx = torch.arange(r, device=self.device).unsqueeze(1)  # (r, 1)
        # The data block of each replica: a rate sweep's rates share the data (replica r reads block r mod q),
        # and a p-sweep shares one seed's inputs across p (TaskData.x_index).
        block = torch.arange(r, device=self.device) % self.data.replicas  # (r,)
        self._y_replica = block.unsqueeze(1)
        self._x_replica = (block if data.x_index is None else self.data.x_index[block]).unsqueeze(1)
        shared = self.data.replicas == 1  # one block for all: the model broadcasts it
        pick = (lambda t: t) if shared else (lambda t: t[block])  # noqa: E731
        self._x_val, self._x_test = pick(self.data.inputs("val")), pick(self.data.inputs("test"))  # small: expanded
        self._y_val, self._y_test = pick(self.data.y_val), pick(self.data.y_test)
        directions = self.data.task_directions
        self._directions = None if directions is None else directions if shared else directions[block.cpu()]
        self._alignment_rows: list[GateRow] = []  # filled by probe_specialisation at each recorded point

    # ------------------------------------------------------------------ batches
    def _next_indices(self) -> torch.Tensor:
        """(r, b) row indices; each replica walks its own shuffled epochs (seed + r), shared by all models."""
        b, n = self.config.batch_size, self.data.n_train
        b = min(b, n)
        if self._perm is None or self._perm_pos + b > n:
            perms = [torch.randperm(n, generator=g) for g in self._batch_gens]
            self._perm = torch.stack(perms).to(self.device, non_blocking=True)
            self._perm_pos = 0
        idx = self._perm[:, self._perm_pos : self._perm_pos + b]
        self._perm_pos += b
        return idx

    def _gather(self, x: torch.Tensor, idx: torch.Tensor, block: torch.Tensor) -> torch.Tensor:
        """x: (q, n, c), idx: (r, b) -> (r, b, c): one index_select of whole rows, faster than fancy indexing;
        `block` (r, 1) names the replica block of x each replica reads (itself, or a sweep's shared inputs).

        x may be a slice of a larger (q, n_all, c) block (train, val and test drawn together), so rows are
        addressed in that block's storage rather than copied into a contiguous tensor (GBs at 200 seeds)."""
        q, n, c = x.shape
        if x.stride(2) != 1 or x.stride(1) != c or x.stride(0) % c:
            return x[0][idx] if q == 1 else x[block, idx]
        step = x.stride(0) // c  # rows from one replica's first row to the next's
        rows = x.as_strided(((q - 1) * step + n, c), (c, 1))  # (rows spanned, c) over the same storage
        flat = idx if q == 1 else idx + block * step  # (r, b)
        return rows.index_select(0, flat.reshape(-1)).view(*idx.shape, c)

    def task_losses(self, preds: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(r, b, k) predictions against targets -> (r, k) mean loss per task: MSE or BCE by task kind."""
        mse = (preds - y).pow(2)
        if self._any_binary:
            bce = F.binary_cross_entropy_with_logits(preds, y, reduction="none")
            mse = torch.where(self.kinds, bce, mse)
        return mse.mean(dim=1)

    # ------------------------------------------------------------------ one step
    def step(self) -> None:
        """One Adam step of every running model on the same batch.

        The models' losses are summed and differentiated once: their parameters are disjoint, so each model's
        gradient is exactly its own loss's (a NaN in one model cannot reach another). A diverged model is left
        out of the sum: its gradient is zero (Adam's leftover momentum still moves its already non-finite
        weights, which changes nothing the run reports)."""
        idx = self._next_indices()
        if len(self._chunks) > 1:
            self._step_in_chunks(idx)
        else:
            xb = self._gather(self.data.x_train, idx, self._x_replica)  # (r, b, d)
            yb = self._gather(self.data.y_train, idx, self._y_replica)  # (r, b, k)
            self._step_whole(xb, yb)
        self._window_steps += 1
        self.step_count += 1

    def _step_whole(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        """Every running model's forward, one backward through the weighting, one update."""
        t_start = time.perf_counter()
        forward_s: dict[str, float] = {}
        losses: dict[str, torch.Tensor] = {}
        extra = None
        for name, model in self.models.items():
            if self.results[name].status != "running":
                continue
            t0 = time.perf_counter()
            out = model(xb)
            losses[name] = per_task = self.task_losses(out.preds, yb)  # (r, k)
            aux = getattr(out, "aux", None)  # (r,) balancing loss, when balance_weight > 0 (Shazeer 2017 §4)
            if aux is not None:
                aux = self.config.balance_weight * aux.sum()
                extra = aux if extra is None else extra + aux
            self._window[name] += per_task.detach()
            forward_s[name] = time.perf_counter() - t0
        if losses:
            self._flat.grad.zero_()  # the models' .grad are views of it: backward adds into them in place
            # replicas are independent: d(sum over r)/dθ_r = dL_r/dθ_r; the weighting keeps that per replica
            self.weighting.backward(losses, extra)
            self.optimizer.step()
            self.weighting.after_step()
        # Each model's time: its forward, plus the shared backward and update split in proportion to it.
        shared = time.perf_counter() - t_start - sum(forward_s.values())
        all_forward = sum(forward_s.values()) or 1.0
        for name, f in forward_s.items():
            self.results[name].seconds += f + shared * f / all_forward

    def _step_in_chunks(self, idx: torch.Tensor) -> None:
        """Equal weighting, one replica chunk at a time: the chunk's batch rows gathered, then every model's
        forward and backward while those rows and the activations are in cache, the gradients landing in the
        flat gradient; then one update of all."""
        running = [n for n in self.models if self.results[n].status == "running"]
        if not running:
            return
        self._flat.grad.zero_()
        for i, (r0, r1) in enumerate(self._chunks):
            xb = self._gather(self.data.x_train, idx[r0:r1], self._x_replica[r0:r1])  # (chunk, b, d)
            yb = self._gather(self.data.y_train, idx[r0:r1], self._y_replica[r0:r1])  # (chunk, b, k)
            for name in running:
                t0 = time.perf_counter()
                out = self._slices[name][i](xb)
                per_task = self.task_losses(out.preds, yb)  # (chunk, k)
                loss = per_task.sum()
                if out.aux is not None:
                    loss = loss + self.config.balance_weight * out.aux.sum()
                loss.backward()
                self._window[name][r0:r1] += per_task.detach()
                self.results[name].seconds += time.perf_counter() - t0
        t0 = time.perf_counter()
        self.optimizer.step()
        update = (time.perf_counter() - t0) / len(running)
        for name in running:
            self.results[name].seconds += update

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, split: str) -> dict[str, tuple[torch.Tensor, np.ndarray | None]]:
        """Per model: (r, k) loss on the split and (r, k) AUC for binary tasks (NaN for the others)."""
        x, y = (self._x_val, self._y_val) if split == "val" else (self._x_test, self._y_test)
        out = {}
        for name, model in self.models.items():
            preds = self._predict(name, x)  # (r, n, k)
            yy = y.expand(model.replicas, -1, -1)
            loss = self.task_losses(preds, yy)
            auc = self._auc(preds, yy) if self._any_binary else None
            out[name] = (loss, auc)
        return out

    def _parts(self, name: str, x: torch.Tensor) -> list[tuple[nn.Module, torch.Tensor]]:
        """(model or replica slice, its inputs) per replica chunk; x: (q, n, d) with q = 1 (shared) or r."""
        return [
            (part, x[0] if x.shape[0] == 1 else x[r0:r1]) for (r0, r1), part in zip(self._chunks, self._slices[name])
        ]

    def _predict(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """(q, n, d) -> (r, n, k), by replica chunks and row chunks that keep activations small."""
        spec = self.models[name].spec
        width = max(spec.n_experts * spec.expert_units[0], 1)
        parts = []
        for part, xs in self._parts(name, x):
            rows = max(256, int(CHUNK_FLOATS // (part.replicas * width)))
            parts.append(torch.cat([part(xs[..., s : s + rows, :]).preds for s in range(0, xs.shape[-2], rows)], 1))
        return torch.cat(parts, dim=0)

    def _auc(self, preds: torch.Tensor, y: torch.Tensor) -> np.ndarray:
        from sklearn.metrics import roc_auc_score  # ~0.7 s to import: only runs with a binary task pay it

        p, t = preds.float().cpu().numpy(), y.float().cpu().numpy()
        auc = np.full(p.shape[0:1] + p.shape[2:], np.nan)  # (r, k)
        for k in np.flatnonzero(self.kinds.cpu().numpy()):
            for r in range(p.shape[0]):
                if np.isfinite(p[r, :, k]).all() and len(np.unique(t[r, :, k])) == 2:
                    auc[r, k] = roc_auc_score(t[r, :, k], p[r, :, k])
        return auc

    # ------------------------------------------------------------------ recording
    def record(self) -> LogRecord:
        """Read back the window's train loss, evaluate, catch divergence. The only host sync in training."""
        step, rows, changed = self.step_count, [], []
        val = self.evaluate("val")
        for name, model in self.models.items():
            res = self.results[name]
            if res.status != "running":
                continue
            if self._window_steps:
                train = (self._window[name] / self._window_steps).cpu().numpy()
                rows += long_rows(name, step, "train", "loss", train)
            loss, auc = val[name]
            loss_np = loss.cpu().numpy()
            rows += long_rows(name, step, "val", "loss", loss_np)
            if auc is not None:
                rows += long_rows(name, step, "val", "auc", auc)
            bad = ~np.isfinite(loss_np).all(axis=1)
            if self._window_steps:
                bad |= ~np.isfinite(train).all(axis=1)
            new_bad = sorted(set(np.flatnonzero(bad).tolist()) - set(res.diverged_replicas))
            if new_bad:
                res.diverged_replicas += new_bad
            if len(res.diverged_replicas) == model.replicas:
                res.status = "diverged"
                res.message = (
                    f"loss became NaN/inf by step {step} (lr = {self.config.lr:g}); "
                    "lower the learning rate and run again"
                )
                changed.append(res)
        gate_rows = [
            (name, step, k, e, float(w[k, e]))
            for name, w in self.probe_gates().items()
            if self.results[name].status == "running"
            for k in range(w.shape[0])
            for e in range(w.shape[1])
        ]
        rows += self.probe_diagnostics()
        rows += self.probe_agreement()
        self._alignment_rows = []
        rows += self.probe_specialisation()
        for name in self._window:
            self._window[name].zero_()
        self._window_steps = 0
        return LogRecord(step, rows, gate_rows, changed, self._alignment_rows)

    def finish(self, cancelled: bool = False) -> LogRecord:
        """Test metrics for every model that still has finite weights; final statuses."""
        test = self.evaluate("test")
        rows, changed = [], []
        for name, res in self.results.items():
            loss, auc = test[name]
            res.test_loss = loss.cpu().numpy()
            res.test_auc = auc
            rows += long_rows(name, self.step_count, "test", "loss", res.test_loss)
            if auc is not None:
                rows += long_rows(name, self.step_count, "test", "auc", auc)
            if res.status == "running":
                res.status = "cancelled" if cancelled else "done"
                if res.diverged_replicas:
                    res.message = f"{len(res.diverged_replicas)} of {self.config.replicas} seeds diverged"
            changed.append(res)
        return LogRecord(self.step_count, rows, [], changed)

    def active(self) -> bool:
        return any(r.status == "running" for r in self.results.values())

    # ------------------------------------------------------------------ the loop
    def run(
        self,
        on_record: Callable[[LogRecord], None] = lambda rec: None,
        should_stop: Callable[[], bool] = lambda: False,
        on_step: Callable[[int], None] = lambda step: None,
    ) -> dict[str, ModelResult]:
        """Train to config.steps, recording at step 0, every log_every steps and at the end."""
        on_record(self.record())
        cancelled = False
        while self.step_count < self.config.steps and self.active():
            if should_stop():
                cancelled = True
                break
            self.step()
            on_step(self.step_count)
            if self.step_count % self.config.log_every == 0 or self.step_count == self.config.steps:
                on_record(self.record())
        if self._window_steps and self.active():
            on_record(self.record())
        on_record(self.finish(cancelled=cancelled))
        return self.results

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """All weights, every replica, named model.param: what the safetensors download holds."""
        return {
            f"{name}.{p}": t.detach().cpu().contiguous()
            for name, model in self.models.items()
            for p, t in model.named_parameters()
        }
