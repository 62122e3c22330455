"""`python -m fsd`: the fsd command."""
import sys

from fsd.cli import main

sys.exit(main())
