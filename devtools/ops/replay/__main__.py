"""`python -m devtools.ops.replay`, as `python -m devtools replay`."""

import sys

from devtools.ops.replay.command import main

sys.exit(main())
