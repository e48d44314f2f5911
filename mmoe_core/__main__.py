"""`python -m mmoe_core …`: see mmoe_core/cli.py."""

import os
import sys

# OpenMP threads that spin while waiting slow torch 10-25x whenever the cores are shared (bench/RESULTS.md);
# set before torch loads. Export OMP_WAIT_POLICY=ACTIVE to opt out on a dedicated machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .cli import main  # noqa: E402

sys.exit(main())
