"""``python -m training FLAGS`` is ``rectifier train FLAGS``: the form torchrun starts.

    torchrun --nproc-per-node 2 -m training --data synthetic-signs --epochs 5
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29400 \\
        --rdzv-id RUN -m training --data imagefolder:/shared/signs --out /shared/runs

``record`` writes a failing rank's error where torchrun looks for it, so torchrun's
summary names the error instead of only an exit code.
"""

import typer
from torch.distributed.elastic.multiprocessing.errors import record

from model.log_setup import configure_text_logging, resolve_log_level
from training.cli import train_command


@record
def main() -> None:
    configure_text_logging(resolve_log_level(None))  # RECTIFIER_LOG_LEVEL, else INFO
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(train_command)
    app()


if __name__ == "__main__":
    main()
