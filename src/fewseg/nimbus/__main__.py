"""``python -m fewseg.nimbus``: the same as ``fewseg-nimbus-worker``."""

import sys

from .worker import main

sys.exit(main())
