"""`python -m edgecam.bench`: the bench's command line, and its child processes' entry."""

import sys

from edgecam.bench.command import main

sys.exit(main())
