"""``python -m paydesk_sandbox``."""

import sys

from paydesk_sandbox.cli import main

sys.exit(main())
