"""Entry point for hosting (e.g. a Hugging Face Space: ``app_file: app.py``). Same as ``python -m demo``."""

import sys

from demo.app import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
