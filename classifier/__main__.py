"""`python -m classifier ...`: see `classifier.cli`."""

from classifier.cli import main

raise SystemExit(main())
