"""`python -m bench.analysis.findings RUN_DIR [--format ...]`: the findings of a run directory."""

import sys

from . import main

sys.exit(main())
