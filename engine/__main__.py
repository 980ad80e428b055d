"""``python -m engine`` = ``roto``."""

import sys

from engine.cli.main import main

sys.exit(main())
