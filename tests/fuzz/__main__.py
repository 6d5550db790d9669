"""``python -m tests.fuzz``: see :mod:`tests.fuzz.engine`."""

import sys

from tests.fuzz.engine import main

sys.exit(main())
