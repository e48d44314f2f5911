"""A warm worker process: `python -m mmoe_core.worker --home DIR --threads N`.

It imports torch first, then waits on stdin for one run id, trains that run and exits, so the first point
appears about a second after Start and the job's memory returns to the system when it ends. If the server
that started it dies, the run ends as `interrupted` instead of training on unwatched.
"""

from __future__ import annotations

import argparse
import os
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    from .execute import execute_run
    from .runs import RunStore, check_run_id

    torch.set_num_threads(max(1, args.threads))
    torch.zeros(1) @ torch.zeros(1)  # touch the kernels once while idle
    parent = os.getppid()
    line = sys.stdin.readline().strip()
    if not line:
        return 0
    execute_run(RunStore(args.home), check_run_id(line), orphaned=lambda: os.getppid() != parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
