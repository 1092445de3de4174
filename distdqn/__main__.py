"""`python -m distdqn` is the `distdqn` command."""

import sys

from distdqn.cli import main

sys.exit(main())
