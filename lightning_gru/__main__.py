"""``python -m lightning_gru``: the ``lightning-gru`` command."""

from lightning_gru.cli import cli_main

if __name__ == "__main__":
    cli_main()
