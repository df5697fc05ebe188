"""`python -m workbench` behaves exactly like the `workbench` command."""

import sys

from workbench.cli import main

sys.exit(main())
