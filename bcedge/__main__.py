"""``python -m bcedge`` is the ``bcedge`` command."""
import sys

from bcedge.cli import main

sys.exit(main())
