"""The sweep that chose the settings of ``sine-gru.yaml``: window length, sliding windows,
batch size, learning rate and epochs, each candidate fitted once per seed and judged by the
validation roll-out of its best checkpoint (``val_rollout_mse``, points 720 to 799), never by
the test points. Prints a Markdown table, one row per candidate (mean, standard deviation and
the values per seed), as ``docs/results.md`` shows it::

    python recipes/sine_sweep.py                      # all candidates, seeds 0 1 2
    python recipes/sine_sweep.py --seeds 3 4 5 6 7 --rows 200,yes,32,5e-3,100

Each candidate is ``recipes/forecasting/sine-gru.yaml`` with the five settings overridden
(everything else, the model and the data seed included, as in the recipe), run by
``run_seeds.py --stage validate``; its runs go to ``runs/forecasting/sine-sweep-<candidate>/``.
"""

import argparse
import json
import math
import statistics
from pathlib import Path

import yaml
from run_seeds import parse_seed, run_seed  # recipes/ is on sys.path when run as a script

from lightning_gru.data import DataConfigError, SineWaveDataModule

RECIPE = Path(__file__).with_name("forecasting") / "sine-gru.yaml"
FIELDS = ("windows", "sliding", "batch", "lr", "epochs")
# (windows, sliding, batch, Adam lr, epochs): the original settings first, the recipe's last
CANDIDATES = (
    "20,no,38,5e-4,150",
    "20,no,1,5e-4,150",
    "20,yes,32,5e-4,150",
    "20,yes,32,5e-3,150",
    "100,yes,32,5e-3,50",
    "200,yes,32,5e-4,150",
    "200,yes,32,5e-3,50",
    "300,yes,32,5e-3,50",
    "200,yes,32,5e-3,100",
)


def candidate(text: str) -> dict[str, str]:
    """An argparse ``type``: ``windows,sliding,batch,lr,epochs`` as a dict of those fields."""
    values = [value.strip() for value in text.split(",")]
    if len(values) != len(FIELDS) or not _valid(*values):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected windows,sliding,batch,lr,epochs: positive integers, sliding yes "
            "or no and a positive learning rate, e.g. 200,yes,32,5e-3,100"
        )
    return dict(zip(FIELDS, values, strict=True))


def _valid(windows: str, sliding: str, batch: str, lr: str, epochs: str) -> bool:
    try:
        rate = float(lr)
    except ValueError:
        return False
    counts = (windows, batch, epochs)
    positive_counts = all(c.isdigit() and int(c) > 0 for c in counts)
    return sliding in ("yes", "no") and positive_counts and 0 < rate < math.inf


def overrides(settings: dict[str, str]) -> list[str]:
    """The command-line arguments that set a candidate's settings on the recipe."""
    return [
        "--data.init_args.seq_len", settings["windows"],
        "--data.init_args.sliding", "true" if settings["sliding"] == "yes" else "false",
        "--data.init_args.batch_size", settings["batch"],
        "--model.init_args.optimizer.init_args.lr", settings["lr"],
        "--trainer.max_epochs", settings["epochs"],
    ]  # fmt: skip


def check_windows(settings: dict[str, str]) -> str | None:
    """Why the recipe's series cannot give a candidate's windows, or None: checked for every
    candidate before the first fit, not when its turn comes."""
    data = yaml.safe_load(RECIPE.read_text())["data"]["init_args"]
    data |= {"seq_len": int(settings["windows"]), "sliding": settings["sliding"] == "yes"}
    try:
        SineWaveDataModule(**data).setup("fit")
    except DataConfigError as err:
        return str(err)
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=parse_seed, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--rows",
        type=candidate,
        nargs="+",
        default=[candidate(text) for text in CANDIDATES],
        help="candidates as windows,sliding,batch,lr,epochs (default: the sweep's nine)",
    )
    options = parser.parse_args(argv)
    for settings in options.rows:
        problem = check_windows(settings)
        if problem:
            parser.error(f"windows of {settings['windows']}: {problem}")
    rows, results = [], []
    for settings in options.rows:
        name = "sine-sweep-" + "-".join(settings[field] for field in FIELDS)
        values = []
        for seed in options.seeds:
            _, value, _ = run_seed(
                RECIPE, seed, "val_rollout_mse", overrides(settings), name, "validate"
            )
            print(f"{name} seed {seed}: val_rollout_mse {value:.4f}", flush=True)
            values.append(value)
        spread = f" ± {statistics.stdev(values):.2g}" if len(values) > 1 else ""
        cells = [settings[field] for field in FIELDS]
        per_seed = ", ".join(f"{value:.4f}" for value in values)
        rows.append(
            f"| {' | '.join(cells)} | {statistics.fmean(values):.4f}{spread} | {per_seed} |"
        )
        results.append(
            {**settings, "seeds": options.seeds, "values": [round(v, 5) for v in values]}
        )
    print("| windows | sliding | batch | Adam lr | epochs | validation roll-out MSE | per seed |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
