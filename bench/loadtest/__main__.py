"""``python -m bench.loadtest``: see ``bench.loadtest.cli``."""

import sys

from bench.loadtest.cli import main

sys.exit(main())
