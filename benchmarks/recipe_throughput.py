"""Training throughput of one recipe with our kernel and with torch's GRU, in the same process.

Fits the recipe a few epochs with ``--model.init_args.backend cython`` and ``torch`` in turn
(``--repeats`` rounds, the order reversed every other round, so that a slow spell of the
machine hits both), logging to
CSV in a temporary folder, and reads the model's ``train_<unit>_per_sec`` (the training steps
only: forward, backward, clipping and the optimizer) of every epoch but the first::

    python benchmarks/recipe_throughput.py recipes/language_model/timemachine-gru.yaml \\
        --config recipes/language_model/local-data.yaml --epochs 30

The last line printed is one JSON object with the median rate of each backend, their ratio,
the per-round medians, the thread count and the commit.
"""

import argparse
import csv
import json
import statistics
import tempfile
from pathlib import Path

import torch
from bench_gru import environment, interleaved, positive  # benchmarks/ is on sys.path as a script

from lightning_gru.cli import run_cli


def fit_rates(recipe: Path, configs: list[str], backend: str, epochs: int, unit: str) -> list:
    """``train_<unit>_per_sec`` of each epoch after the first of one fit."""
    with tempfile.TemporaryDirectory() as tmp:
        args = ["fit", "--config", str(recipe)]
        for config in configs:
            args += ["--config", config]
        args += [
            "--model.init_args.backend", backend,
            "--trainer.max_epochs", str(epochs),
            "--trainer.check_val_every_n_epoch", str(epochs + 1),
            "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
            "--trainer.logger.init_args.save_dir", tmp,
            "--checkpoint.dirpath", str(Path(tmp) / "checkpoints"),
            "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false",
        ]  # fmt: skip
        run_cli(args)
        key = f"train_{unit}_per_sec"
        rows = list(csv.DictReader(next(Path(tmp).rglob("metrics.csv")).open()))
        rates = [(int(r["epoch"]), float(r[key])) for r in rows if r.get(key)]
    if not rates:
        logged = sorted({name for row in rows for name, value in row.items() if value})
        raise SystemExit(f"{recipe}: the model logged no {key}; it logged {logged}")
    return [rate for epoch, rate in sorted(rates) if epoch > 0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--config", action="append", default=[], help="overlays, in order")
    parser.add_argument(
        "--epochs", type=positive(int), default=30, help="epochs per fit (the first is not timed)"
    )
    parser.add_argument("--repeats", type=positive(int), default=2, help="rounds of both backends")
    parser.add_argument(
        "--unit", choices=["tokens", "samples"], default="tokens",
        help="tokens (language model) or samples (sentiment)",
    )  # fmt: skip
    options = parser.parse_args(argv)
    if options.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch (warm-up) is not timed")
    if not options.recipe.is_file():
        parser.error(f"recipe {options.recipe}: no such file")

    rounds: dict[str, list[float]] = {"cython": [], "torch": []}
    for backend in interleaved(rounds, options.repeats):  # ABBA: drifts cancel
        rates = fit_rates(options.recipe, options.config, backend, options.epochs, options.unit)
        rounds[backend].append(statistics.median(rates))
        print(f"{backend}: median {rounds[backend][-1]:,.0f} {options.unit}/s")
    medians = {backend: statistics.median(values) for backend, values in rounds.items()}
    print(
        json.dumps(
            {
                "recipe": str(options.recipe),
                "unit": f"{options.unit}/s",
                "cython": round(medians["cython"]),
                "torch": round(medians["torch"]),
                "speedup": round(medians["cython"] / medians["torch"], 2),
                "rounds": {k: [round(v) for v in vs] for k, vs in rounds.items()},
                "threads": torch.get_num_threads(),
                "commit": environment()["commit"],
            }
        )
    )


if __name__ == "__main__":
    main()
