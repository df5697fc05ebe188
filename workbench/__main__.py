"""`python -m workbench` behaves exactly like the `workbench` command."""

import sys

try:
    from workbench.cli import main
except KeyboardInterrupt:  # Ctrl-C while Python is still starting up: no traceback
    sys.exit(130)

sys.exit(main())
