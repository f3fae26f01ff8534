"""`python -m bnconform` is the `bnconform` command."""

import sys

from bnconform.cli import main

sys.exit(main())
