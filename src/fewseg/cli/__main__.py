"""``python -m fewseg.cli ...``: the ``fewseg`` command."""

import sys

from .main import main

sys.exit(main())
