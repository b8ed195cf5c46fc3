"""``python -m procfound``: the same as the ``procfound`` command."""

from procfound.cli import main

raise SystemExit(main())
