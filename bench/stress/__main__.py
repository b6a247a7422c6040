"""``python -m bench.stress``: see ``bench.stress.cli``."""

import sys

from bench.stress.cli import main

sys.exit(main())
