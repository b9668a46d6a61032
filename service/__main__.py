"""``python -m service serve ...`` is ``rectifier serve ...``."""

from model.cli import main

# The guard matters: ``--workers`` starts processes with ``spawn``, which imports this
# module again in each worker (as ``__mp_main__``).
if __name__ == "__main__":
    main()
