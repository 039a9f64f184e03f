"""The command-line scripts of ``benchmarks/`` and ``recipes/``: bad arguments are refused up
front with a usage error that names them (not after minutes of timing, and never a hang), and
the two scripts that drive ``lightning-gru`` run end to end on the debug recipe; ``make demo``
(``lightning_gru.demo``) runs end to end on small data."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DEBUG_RECIPE = REPO / "recipes" / "debug.yaml"

# run_cli(args) inside pytest: LightningCLI warns that sys.argv holds pytest's arguments
pytestmark = pytest.mark.filterwarnings("ignore:LightningCLI's args parameter")


BAD_ARGUMENTS = [
    ("benchmarks/bench_gru", ["--repeats", "0"], "must be a positive int, got '0'"),
    ("benchmarks/bench_gru", ["--min-time", "-1"], "must be a positive float, got '-1'"),
    ("benchmarks/bench_gru", ["--min-time", "nan"], "must be a positive float"),
    ("benchmarks/bench_gru", ["--min-time", "inf"], "must be a positive float"),
    ("benchmarks/bench_gru", ["--repeats", "two"], "invalid int value: 'two'"),
    ("benchmarks/bench_gru", ["--configs", "sine,tm"], "unknown config(s) ['sine', 'tm']"),
    ("benchmarks/bench_gru", ["--configs", " , "], "unknown config(s) ' , '"),
    ("benchmarks/bench_gru", ["--json", "no/such/folder/r.json"], "not a file in an existing"),
    ("benchmarks/bench_gru", ["--json", "."], "not a file in an existing folder"),
    ("benchmarks/compare_builds", [".", "--modes", "training"], "unknown mode(s) ['training']"),
    ("benchmarks/compare_builds", [".", "--configs", "imdb,x"], "unknown config(s) ['x']"),
    ("benchmarks/compare_builds", [".", "--repeats", "0"], "must be a positive int"),
    ("benchmarks/shape_sweep", ["--repeats", "-3"], "must be a positive int, got '-3'"),
    ("benchmarks/step_overhead", ["--calls", "0"], "must be a positive int, got '0'"),
    ("benchmarks/packed_training_step", ["--steps", "0"], "must be a positive int, got '0'"),
    ("benchmarks/language_model_step", ["--rounds", "0"], "must be a positive int, got '0'"),
    ("benchmarks/language_model_step", ["--steps", "x"], "invalid int value: 'x'"),
    ("benchmarks/packed_training_step", ["--max-length", "0"], "a positive int or -1, got '0'"),
    ("benchmarks/packed_training_step", ["--encoders", "ours,gru"], "unknown encoder(s) ['gru']"),
    ("benchmarks/packed_training_step", ["--encoders", "torch-lstm-padded"], "one direction"),
    ("benchmarks/recipe_throughput", [str(DEBUG_RECIPE), "--epochs", "1"], "at least 2"),
    ("benchmarks/recipe_throughput", [str(DEBUG_RECIPE), "--unit", "chars"], "invalid choice"),
    ("benchmarks/recipe_throughput", ["missing.yaml"], "recipe missing.yaml: no such file"),
    ("recipes/run_seeds", [str(DEBUG_RECIPE), "--seeds", "-1"], "seeds are 0 to 4294967295"),
    ("recipes/run_seeds", [str(DEBUG_RECIPE), "--seeds", str(2**32)], "seeds are 0 to"),
    ("recipes/run_seeds", ["missing.yaml"], "recipe missing.yaml: no such file"),
    ("recipes/run_seeds", [str(DEBUG_RECIPE), "--stage", "fit"], "invalid choice: 'fit'"),
    ("recipes/sine_sweep", ["--rows", "20,maybe,38,5e-4,150"], "expected windows,sliding"),
    ("recipes/sine_sweep", ["--rows", "20,no,0,5e-4,150"], "positive integers"),
    ("recipes/sine_sweep", ["--rows", "20,no,38,fast,150"], "positive learning rate"),
    ("recipes/sine_sweep", ["--rows", "20,no,38,inf,150"], "positive learning rate"),
    ("recipes/sine_sweep", ["--rows", "20,no,38,5e-4"], "expected windows,sliding"),
    ("recipes/sine_sweep", ["--seeds", "-2"], "seeds are 0 to"),
    ("recipes/sine_sweep", ["--rows", "900,yes,32,5e-3,1"], "windows of 900: a series of 1000"),
    ("lightning_gru/demo", ["--epochs", "two"], "invalid int value: 'two'"),
    ("lightning_gru/demo", ["--epochs", "0"], "must be a positive int, got '0'"),
    ("lightning_gru/demo", ["--epochs", "-1"], "must be a positive int, got '-1'"),
]


@pytest.mark.parametrize(
    ("path", "argv", "message"),
    BAD_ARGUMENTS,
    ids=[f"{p}-{' '.join(a)}" for p, a, _ in BAD_ARGUMENTS],
)
def test_bad_arguments_are_a_usage_error(script, capsys, path, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        script(path).main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_compare_builds_refuses_a_file_that_is_no_kernel_build(script, tmp_path):
    other = tmp_path / "_cython.cpython-311-x86_64-linux-gnu.so"
    other.write_bytes(b"")
    with pytest.raises(SystemExit, match="expected a _gru.*.so kernel extension"):
        script("benchmarks/compare_builds").main([str(other), "--configs", "sine-b1"])


def test_compare_builds_names_a_missing_baseline(script):
    with pytest.raises(SystemExit, match="gone.so: no such extension, checkout or glue"):
        script("benchmarks/compare_builds").main(["gone.so", "--configs", "sine-b1"])


def test_run_seeds_fits_and_tests_each_seed(script, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = [str(DEBUG_RECIPE), "--seeds", "3", "4", "--", "--trainer.max_epochs", "1"]
    script("recipes/run_seeds").main(argv)
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["metric"] == "test_mse"  # the forecaster's, chosen without --metric
    assert summary["seeds"] == [3, 4]
    assert len(summary["values"]) == 2 and summary["values"][0] != summary["values"][1]
    assert summary["min"] <= summary["mean"] <= summary["max"]
    for seed in (3, 4):
        assert (tmp_path / "runs" / "recipes" / "debug" / f"seed-{seed}" / "checkpoints").is_dir()


def test_run_seeds_validates_each_best_checkpoint_with_stage_validate(
    script, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    argv = [str(DEBUG_RECIPE), "--seeds", "0", "--stage", "validate", "--"]
    monitor = ["--checkpoint.monitor", "val_rollout_mse"]  # (the debug recipe's is val_loss)
    script("recipes/run_seeds").main([*argv, "--trainer.max_epochs", "2", *monitor])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["stage"], summary["metric"]) == ("validate", "val_rollout_mse")
    best = tmp_path / "runs" / "recipes" / "debug" / "seed-0" / "checkpoints" / "best.ckpt"
    checkpoint = torch.load(best, weights_only=True)
    callbacks = checkpoint["callbacks"]
    best_score = next(s["best_model_score"] for k, s in callbacks.items() if "Checkpoint" in k)
    assert summary["values"] == [round(float(best_score), 5)]  # the monitored value, recomputed


def test_sine_sweep_prints_a_row_per_candidate(script, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rows = ["20,no,38,5e-4,1", "10,yes,16,1e-2,1"]
    script("recipes/sine_sweep").main(["--seeds", "0", "1", "--rows", *rows])
    lines = capsys.readouterr().out.strip().splitlines()
    results = json.loads(lines[-1])
    assert [r["windows"] for r in results] == ["20", "10"]
    assert all(len(r["values"]) == 2 and r["values"][0] != r["values"][1] for r in results)
    table = lines[-3:-1]
    assert table[0].startswith("| 20 | no | 38 | 5e-4 | 1 | ")
    assert table[1].startswith("| 10 | yes | 16 | 1e-2 | 1 | ")
    assert (tmp_path / "runs" / "forecasting" / "sine-sweep-10-yes-16-1e-2-1" / "seed-1").is_dir()


def test_run_seeds_lists_the_logged_metrics_when_the_metric_is_wrong(script, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [str(DEBUG_RECIPE), "--seeds", "0", "--metric", "test_acc", "--"]
    with pytest.raises(SystemExit, match=r"none of \['test_acc'\]; it logged \[.*'test_mse'"):
        script("recipes/run_seeds").main([*argv, "--trainer.max_epochs", "1"])


def test_packed_training_step_times_the_one_direction_encoders(script, tmp_path, capsys):
    """On a small IMDb-like data set: every encoder of the one-direction nets, torch's LSTM on
    the padded batch among them, trains a step per batch."""
    import pandas as pd

    reviews = [("a wonderful film with a moving story", 1), ("dull and far too long", 0)] * 80
    for split in ("train", "test"):
        pd.DataFrame(reviews, columns=["text", "label"]).to_parquet(tmp_path / f"{split}.parquet")
    argv = ["--data-dir", str(tmp_path), "--steps", "2", "--one-direction", "--max-length", "-1"]
    script("benchmarks/packed_training_step").main(argv)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("2 batches of up to 64 reviews") and "one direction" in lines[0]
    summary = json.loads(lines[-1])
    assert set(summary) == {
        "ours", "torch-gru", "torch-lstm", "torch-lstm-padded", "torch_gru_over_ours", "threads"
    }  # fmt: skip
    assert all(summary[name] > 0 for name in ("ours", "torch-gru", "torch-lstm-padded"))


def test_recipe_throughput_says_what_the_model_logged(script, tmp_path, monkeypatch):
    """The forecaster logs no throughput: the error lists what it logged instead."""
    monkeypatch.chdir(tmp_path)
    argv = [str(DEBUG_RECIPE), "--epochs", "2", "--repeats", "1"]
    with pytest.raises(
        SystemExit, match=r"logged no train_tokens_per_sec; it logged \[.*train_loss_epoch"
    ):
        script("benchmarks/recipe_throughput").main(argv)


def test_language_model_step_times_both_backends(script, capsys):
    script("benchmarks/language_model_step").main(["--rounds", "2", "--steps", "2"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[1:3]] == ["cython", "torch"]
    for line in lines[1:3]:
        parts = dict(
            cell.rsplit(" ", 1) for cell in line.split(": ", 1)[1].split("; ")[0].split(", ")
        )
        assert set(parts) == {"forward", "loss and backward", "clipping and SGD step"}
        assert all(float(ms) > 0 for ms in parts.values())
    assert lines[3].startswith("speed-up (of the sums) ") and float(lines[3][23:-1]) > 0


def test_demo_tests_the_best_checkpoint_of_each_recipe(tmp_path, monkeypatch, capsys):
    """Each sine recipe is fitted, its best checkpoint tested with the same options; the
    printout has both test MSEs and where the figures and runs are."""
    from lightning_gru import demo
    from lightning_gru.cli import run_cli

    monkeypatch.chdir(tmp_path)  # the recipes write into runs/
    small = ["--data.num_points", "300", "--data.seq_len", "10", "--trainer.logger", "CSVLogger"]
    runs = []

    def small_run(args):
        runs.append((args, run_cli([*args, *small, "--trainer.enable_progress_bar", "false"])))
        return runs[-1][1]

    monkeypatch.setattr(demo, "run_cli", small_run)
    monkeypatch.setattr(demo, "time", SimpleNamespace(perf_counter=iter([10.0, 52.4]).__next__))
    demo.main(["--epochs", "1"])

    forecasting, written = REPO / "recipes" / "forecasting", tmp_path / "runs" / "forecasting"
    gru_dir, mlp_dir = written / "sine-gru" / "checkpoints", written / "sine-mlp" / "checkpoints"
    assert [(args[0], args[args.index("--config") + 1]) for args, _ in runs] == [
        ("fit", str(forecasting / "sine-gru.yaml")), ("test", str(forecasting / "sine-gru.yaml")),
        ("fit", str(forecasting / "sine-mlp.yaml")), ("test", str(forecasting / "sine-mlp.yaml")),
    ]  # fmt: skip
    for args, _ in runs:
        assert args[args.index("--trainer.max_epochs") + 1] == "1"
        assert args[args.index("--trainer.enable_model_summary") + 1] == "false"
    (_, gru_fit), (gru_test_args, gru_test), (_, mlp_fit), (mlp_test_args, mlp_test) = runs
    assert gru_fit.trainer.current_epoch == mlp_fit.trainer.current_epoch == 1
    assert gru_test_args[-2:] == ["--ckpt_path", str(gru_dir / "best.ckpt")]
    assert mlp_test_args[-2:] == ["--ckpt_path", str(mlp_dir / "best.ckpt")]
    gru_mse, mlp_mse = (float(t.trainer.callback_metrics["test_mse"]) for t in (gru_test, mlp_test))
    lines = capsys.readouterr().out.splitlines()
    start = lines.index("Sine-wave forecasting: autoregressive roll-out over the 199 test steps")
    assert lines[start + 1 :] == [
        f"  GRU (recipes/forecasting/sine-gru.yaml)  test MSE {gru_mse:.4f}",
        f"  MLP (recipes/forecasting/sine-mlp.yaml)  test MSE {mlp_mse:.4f}",
        "  noise floor 0.0100; the original experiment reported 0.0171 and 1.0187",
        f"  plot: {gru_dir / 'forecast.png'} (MLP: {mlp_dir / 'forecast.png'})",
        f"  learning curves: {gru_dir / 'learning_curves.png'}",
        f"  W&B runs: {gru_dir.parent / 'wandb'}, {mlp_dir.parent / 'wandb'}",
        "    (offline runs upload with: wandb sync <run folder>)",
        "  wall time: 42 s",
    ]
    assert all((folder / "forecast.png").is_file() for folder in (gru_dir, mlp_dir))
    assert (gru_dir / "learning_curves.png").is_file()


def test_demo_keeps_the_recipes_epochs_unless_told(monkeypatch, tmp_path):
    from lightning_gru import demo

    commands = []

    def fake_run(args):
        commands.append(args)
        best = SimpleNamespace(best_model_path=str(tmp_path / "best.ckpt"))
        metrics = {"test_mse": torch.tensor(0.5)}
        return SimpleNamespace(
            trainer=SimpleNamespace(checkpoint_callback=best, callback_metrics=metrics)
        )

    monkeypatch.setattr(demo, "run_cli", fake_run)
    demo.main([])
    assert len(commands) == 4
    assert not any(arg.startswith("--trainer.max_epochs") for args in commands for arg in args)


def test_demo_without_the_recipes_says_so(monkeypatch):
    from lightning_gru import demo

    def not_installed():
        raise FileNotFoundError("the lightning-gru recipes are not installed (searched here)")

    monkeypatch.setattr(demo, "recipes_dir", not_installed)
    monkeypatch.setattr(demo, "run_cli", lambda args: pytest.fail("ran without a recipe"))
    with pytest.raises(SystemExit, match=r"^lightning-gru demo: the lightning-gru recipes are"):
        demo.main([])
