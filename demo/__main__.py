"""``python -m demo``: start the app (see ``demo.app.main``). Arguments are parsed first, so ``--help`` and a
mistyped flag answer before the heavy imports."""

import sys

from demo.cli import parse_args

arguments = parse_args()
from demo.app import main  # noqa: E402  (imports Gradio and PyTorch: seconds)

sys.exit(main(args=arguments))
