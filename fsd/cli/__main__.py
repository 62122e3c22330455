"""`python -m fsd.cli`: the fsd command."""
import sys

from fsd.cli import main

sys.exit(main())
