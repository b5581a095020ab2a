"""``python -m polymatch`` and the ``polymatch`` script: the same CLI as the Rust binary."""

from __future__ import annotations

import sys

from polymatch._core import run_cli


def main() -> None:
    """Run the ``polymatch`` command line with ``sys.argv`` and exit with its code."""
    sys.exit(run_cli(sys.argv[1:]))


if __name__ == "__main__":
    main()
