"""``python -m demo``: start the app (see ``demo.app.main``)."""

import sys

from demo.app import main

sys.exit(main())
