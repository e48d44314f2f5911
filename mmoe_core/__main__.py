"""`python -m mmoe_core …` and the `mmoe` console script: see mmoe_core/cli.py."""

import signal
import sys

from .runtime.openmp import choose_wait_policy


def _quit_while_loading(signum: int, frame: object) -> None:
    """Ctrl-C or SIGTERM before training started (torch takes seconds to import): nothing to keep, no traceback."""
    print(f"stopped by {signal.Signals(signum).name} while starting; nothing was run", file=sys.stderr)
    sys.exit(128 + signum)


def main() -> int:
    """Set torch's OpenMP wait policy, then import the CLI (and with it torch), then run it."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _quit_while_loading)  # cli.main() installs the handler that keeps a run's curves
    # Before torch loads: a short spin on a quiet machine, sleeping threads on a busy one (mmoe_core/runtime/openmp.py).
    # Set OMP_WAIT_POLICY or GOMP_SPINCOUNT yourself to override.
    choose_wait_policy()
    from .cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
