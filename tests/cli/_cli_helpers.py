"""Helpers of the command's tests: overrides that keep a recipe run small and inside
``tmp_path``, and readers of what a run wrote (predictions, offline W&B runs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "recipes"
WANDB = Path(sys.executable).with_name("wandb")


def common(tmp_path: Path, name: str, wandb: bool = True) -> list[str]:
    """Overrides that keep a recipe run small and inside ``tmp_path``."""
    run = tmp_path / "runs" / name
    logger = ["--trainer.logger.init_args.save_dir", str(run)]
    if not wandb:
        logger = ["--trainer.logger", "CSVLogger", "--trainer.logger.save_dir", str(run)]
    return [
        *logger,
        "--checkpoint.dirpath",
        str(run / "checkpoints"),
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
        "--trainer.log_every_n_steps",
        "1",
    ]


def written_predictions(folder: Path) -> list[dict]:
    """The rows of ``predictions.jsonl`` in ``folder``."""
    return [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]


def wandb_run(save_dir: Path, index: int = -1) -> Path:
    """The ``index``-th offline W&B run under ``save_dir``, in order of start."""
    runs = sorted(
        (save_dir / "wandb").glob("offline-run-*"), key=lambda r: wandb_summary(r)["start_time"]
    )
    assert runs, f"no offline W&B run under {save_dir}"
    return runs[index]


def wandb_history(run_dir: Path) -> dict[str, object]:
    """Every key logged to the run's history (its last value), read with ``wandb leet inspect``;
    media are flattened: ``{"forecast._type": "images/separated", "forecast.filenames": ...}``."""
    out = subprocess.run(
        [str(WANDB), "leet", "inspect", "--json", str(run_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    history: dict[str, object] = {}
    for line in out.splitlines():
        record = json.loads(line)
        if record.get("type") == "history":
            history.update(record["history"]["item"])
    return history


def wandb_summary(run_dir: Path) -> dict:
    out = subprocess.run(
        [str(WANDB), "leet", "inspect", "--summary", "--json", str(run_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def debug_fit(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "fit", "--config", str(RECIPES / "debug.yaml"), "--trainer.logger", "false",
        "--trainer.enable_progress_bar", "false", "--trainer.max_epochs", "1", *extra,
    ]  # fmt: skip
