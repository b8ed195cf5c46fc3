"""``python -m procfound``: the same as the ``procfound`` command."""

from procfound.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
