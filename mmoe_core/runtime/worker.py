"""A warm worker process: `python -m mmoe_core.runtime.worker --home DIR --threads N`.

It imports torch first, then waits on stdin for one run id, trains that run and exits, so the first point
appears about a second after Start and the job's memory returns to the system when it ends. If the server
that started it dies, the run ends as `interrupted` instead of training on unwatched. It trains at a lower
CPU priority (nice MMOE_WORKER_NICE, default 10) so that the web server and its pages never wait behind it.
"""

from __future__ import annotations

import argparse
import os
import sys

from .. import settings
from .openmp import choose_wait_policy


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    choose_wait_policy(args.threads)  # before torch loads: see mmoe_core/openmp.py
    _lower_priority()
    import torch

    from ..runs import RunStore, check_run_id
    from .execute import execute_run

    torch.set_num_threads(max(1, args.threads))
    torch.zeros(1) @ torch.zeros(1)  # touch the kernels once while idle
    _warm_up(torch)
    parent = os.getppid()
    line = sys.stdin.readline().strip()
    if not line:
        return 0
    from .. import store_faults
    from .execute import DiskFull

    try:
        execute_run(RunStore(args.home), check_run_id(line), orphaned=lambda: os.getppid() != parent)
    except DiskFull:
        return store_faults.DISK_FULL_EXIT
    return 0


def _lower_priority() -> None:
    """Training is a batch job; serving a page is interactive. With 8 runs queued on 2 cores, a ninth page
    loaded in ~4 s beside a worker at the server's priority (bench/load_test.py)."""
    try:
        os.nice(max(0, settings.get("MMOE_WORKER_NICE")))
    except (OSError, ValueError, AttributeError):  # not permitted / not a number / not on this OS: train anyway
        pass


def _warm_up(torch) -> None:
    """One tiny training step while idle: Adam's first construction imports torch._dynamo (seconds), and the
    first forward/backward loads kernels, so the first point appears about a second after Start."""
    from ..config import RunConfig
    from ..models import build_model

    model = build_model("mmoe", RunConfig(), replicas=1, input_dim=4, n_tasks=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)
    model(torch.zeros(1, 8, 4)).preds.sum().backward()
    opt.step()


if __name__ == "__main__":
    sys.exit(main())
