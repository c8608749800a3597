"""``python -m jola_lens`` = the ``jola-lens`` command."""

import sys

from jola_lens.cli import main

sys.exit(main())
