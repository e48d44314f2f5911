"""`python -m mmoe_core …` and the `mmoe` console script: see mmoe_core/cli.py."""

import sys

from .runtime.openmp import choose_wait_policy


def main() -> int:
    """Set torch's OpenMP wait policy, then import the CLI (and with it torch), then run it."""
    # Before torch loads: a short spin on a quiet machine, sleeping threads on a busy one (mmoe_core/runtime/openmp.py).
    # Set OMP_WAIT_POLICY or GOMP_SPINCOUNT yourself to override.
    choose_wait_policy()
    from .cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
