"""Entry point: `python -m benchmark run --matrix quick --data-dir ../shared/data`."""

import sys

from benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
