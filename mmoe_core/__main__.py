"""`python -m mmoe_core …`: see mmoe_core/cli.py."""

import sys

from .runtime.openmp import choose_wait_policy

# Before torch loads: a short spin on a quiet machine, sleeping threads on a busy one (mmoe_core/runtime/openmp.py).
# Set OMP_WAIT_POLICY or GOMP_SPINCOUNT yourself to override.
choose_wait_policy()

from .cli import main  # noqa: E402

sys.exit(main())
