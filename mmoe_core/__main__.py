"""`python -m mmoe_core …`: see mmoe_core/cli.py."""

import sys

from .cli import main

sys.exit(main())
