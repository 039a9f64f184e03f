"""Fit a recipe once per seed, test each best checkpoint, and print the mean and spread.

Each seed gets its own folder, ``runs/<task>/<name>/seed-<S>/`` (checkpoints, figures, W&B
run; ``name`` defaults to the recipe's), and sets ``seed_everything`` (the initial weights); the
data stay those of the recipe. The arguments after ``--`` go to both ``fit`` and ``test``::

    python recipes/run_seeds.py recipes/forecasting/sine-gru.yaml --seeds 0 1 2
    python recipes/run_seeds.py recipes/forecasting/sine-gru.yaml --name sine-gru-short \\
        -- --trainer.max_epochs 10

The metric is the model's test metric, ``test_mse`` (forecasting) or ``test_acc`` (sentiment),
unless ``--metric`` names another. ``--stage validate`` validates each best checkpoint instead,
for comparing settings without looking at the test data (metric ``val_rollout_mse`` or
``val_acc``; ``sine_sweep.py`` compares the sine-wave settings so). The last line printed is
one JSON object: recipe, stage, metric, per-seed values, mean, standard deviation
(``ddof=1``), minimum, maximum and the wall time of each ``fit``.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from lightning_gru.cli import run_cli

DEFAULT_METRICS = {"test": ("test_mse", "test_acc"), "validate": ("val_rollout_mse", "val_acc")}
MAX_SEED = 2**32 - 1  # the range of seed_everything, which replaces other values by random ones


def parse_seed(text: str) -> int:
    """An argparse ``type``: a seed that ``seed_everything`` takes as it is."""
    value = int(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"seeds are 0 to {MAX_SEED}, got {text}")
    return value


def pick_metric(metrics: dict, wanted: str | None, stage: str = "test") -> str:
    """``wanted``, or the first of the stage's ``DEFAULT_METRICS`` that it logged."""
    candidates = [wanted] if wanted else DEFAULT_METRICS[stage]
    for name in candidates:
        if name in metrics:
            return name
    raise SystemExit(
        f"the {stage} logged none of {list(candidates)}; it logged {sorted(metrics)} "
        "(choose one with --metric; the checkpoints of this seed are kept)"
    )


def run_seed(
    recipe: Path, seed: int, metric: str | None, extra: list[str], name: str, stage: str = "test"
) -> tuple[str, float, float]:
    """Fit one seed, then test (or validate) its best checkpoint: the name and value of the
    metric, and the fit wall time."""
    folder = Path("runs") / recipe.parent.name / name / f"seed-{seed}"
    args = [
        "--config", str(recipe),
        "--seed_everything", str(seed),
        "--trainer.logger.init_args.save_dir", str(folder),
        "--trainer.logger.init_args.name", f"{name}-seed-{seed}",
        "--checkpoint.dirpath", str(folder / "checkpoints"),
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        *extra,
    ]  # fmt: skip
    start = time.perf_counter()
    fit = run_cli(["fit", *args])
    fit_seconds = time.perf_counter() - start
    best = fit.trainer.checkpoint_callback.best_model_path
    metrics = run_cli([stage, *args, "--ckpt_path", best]).trainer.callback_metrics
    metric = pick_metric(metrics, metric, stage)
    return metric, float(metrics[metric]), fit_seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Arguments after -- go to fit and to test (or validate): -- --trainer.max_epochs 10",
    )
    parser.add_argument("recipe", type=Path, help="a recipe YAML under recipes/")
    parser.add_argument("--seeds", type=parse_seed, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--stage",
        choices=sorted(DEFAULT_METRICS),
        default="test",
        help="what runs on each best checkpoint (default: test)",
    )
    parser.add_argument(
        "--metric",
        help="the metric to report (default: test_mse or test_acc, as logged; with --stage "
        "validate, val_rollout_mse or val_acc)",
    )
    parser.add_argument("--name", help="the run folder and W&B name (default: the recipe's)")
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    options = parser.parse_args(argv[:split])
    options.extra = argv[split + 1 :]  # after --: more arguments for fit and test/validate
    if not options.recipe.is_file():
        parser.error(f"recipe {options.recipe}: no such file")

    name = options.name or options.recipe.stem
    metric, values, seconds = options.metric, [], []
    for seed in options.seeds:
        metric, value, fit_seconds = run_seed(
            options.recipe, seed, metric, options.extra, name, options.stage
        )
        values.append(value)
        seconds.append(round(fit_seconds, 1))
        print(f"{options.recipe} seed {seed}: {metric} {value:.4f} ({fit_seconds:.0f} s)")
    summary = {
        "recipe": str(options.recipe),
        "stage": options.stage,
        "metric": metric,
        "seeds": options.seeds,
        "values": [round(v, 5) for v in values],
        "mean": round(statistics.fmean(values), 5),
        "std": round(statistics.stdev(values), 5) if len(values) > 1 else 0.0,
        "min": round(min(values), 5),
        "max": round(max(values), 5),
        "fit_seconds": seconds,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
