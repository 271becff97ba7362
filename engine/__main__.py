"""`python -m engine` is the `recorder-engine` CLI."""

import sys

from engine.cli import main

if __name__ == "__main__":
    sys.exit(main())
