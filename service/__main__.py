"""``python -m service serve ...`` is ``rectifier serve ...``."""

from model.cli import main

main()
