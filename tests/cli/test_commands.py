"""The ``lightning-gru`` command end to end: each experiment's recipe on tiny data (fit, test or
validate, predict), W&B offline runs read back with wandb's own reader, resuming from
``last.ckpt``, and predicting from a checkpoint without the training data.

W&B runs offline into ``tmp_path``; datasets load from tiny files written by the fixtures; no
test reaches the network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from _cli_helpers import (
    RECIPES,
    REPO,
    WANDB,
    common,
    debug_fit,
    wandb_history,
    wandb_run,
    wandb_summary,
    written_predictions,
)

import lightning_gru.data.imdb as imdb
from lightning_gru.cli import (
    ArgumentValueError,
    LightningGRUCLI,
    cli_main,
    run_cli,
    wandb_has_credentials,
)
from lightning_gru.data import DataFileError, SourceUnreachableError
from lightning_gru.models.callbacks import WholeEpochCheckpoint

# run_cli(args) inside pytest: LightningCLI warns that sys.argv holds pytest's arguments
pytestmark = pytest.mark.filterwarnings("ignore:LightningCLI's args parameter")


needs_wandb_reader = pytest.mark.skipif(not WANDB.exists(), reason="no wandb command")


@needs_wandb_reader
def test_forecasting_fit_test_and_wandb_run(tmp_path):
    recipe = ["--config", str(RECIPES / "forecasting" / "sine-gru.yaml")]
    small = [*common(tmp_path, "sine"), "--trainer.max_epochs", "3", "--data.num_points", "300"]
    cli = run_cli(["fit", *recipe, *small])
    ckpt_dir = tmp_path / "runs" / "sine" / "checkpoints"
    assert cli.trainer.current_epoch == 3
    assert {"best.ckpt", "last.ckpt", "learning_curves.png"} <= {p.name for p in ckpt_dir.iterdir()}

    cli = run_cli(["test", *recipe, *small, "--ckpt_path", str(ckpt_dir / "best.ckpt")])
    forecast = cli.model.forecast
    assert forecast["prediction"].shape == (1, 59, 1)  # 60 test points: 59 predicted
    assert (ckpt_dir / "forecast.png").is_file()

    fit_run, test_run = (
        wandb_run(tmp_path / "runs" / "sine", 0),
        wandb_run(tmp_path / "runs" / "sine", 1),
    )
    history = wandb_history(fit_run)
    assert {"train_loss_step", "train_loss_epoch", "val_rollout_mse", "epoch"} <= history.keys()
    assert history["learning_curves._type"] == "images/separated"
    summary = wandb_summary(fit_run)
    assert summary["state"] == "finished"  # complete, and ready for `wandb sync`:
    sync = [str(WANDB), "sync", "--dry-run", str(fit_run)]
    assert "Would sync 1 run" in subprocess.run(sync, capture_output=True, text=True).stderr
    assert summary["project"] == "lightning-gru"
    assert summary["config"]["config"]["model"]["class_path"] == "lightning_gru.models.Forecaster"
    assert summary["config"]["hidden_size"] == 16  # the model's hyperparameters
    test_history = wandb_history(test_run)
    assert test_history["forecast._type"] == "images/separated"
    assert test_history["test_mse"] == pytest.approx(
        torch.nn.functional.mse_loss(forecast["prediction"], forecast["target"][:, 1:]).item()
    )


def test_without_a_logger_the_config_goes_next_to_the_checkpoints(tmp_path, monkeypatch):
    """And after the checkpoints' setup: written before it, it had the first fit into a new
    folder warned that the folder "exists and is not empty"."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # Lightning's log folder without a logger
    recipe = ["--config", str(RECIPES / "forecasting" / "sine-gru.yaml")]
    ckpt_dir = tmp_path / "checkpoints"
    small = [
        "--trainer.logger",
        "false",
        "--checkpoint.dirpath",
        str(ckpt_dir),
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.max_epochs",
        "1",
        "--data.num_points",
        "300",
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_cli(["fit", *recipe, *small])
    assert not [w for w in caught if "exists and is not empty" in str(w.message)]
    run_cli(["test", *recipe, *small, "--ckpt_path", str(ckpt_dir / "last.ckpt")])
    assert list(work.iterdir()) == []
    assert {"config.yaml", "config-test.yaml"} <= {p.name for p in ckpt_dir.iterdir()}
    saved = yaml.safe_load((ckpt_dir / "config.yaml").read_text())
    assert saved["model"]["class_path"] == "lightning_gru.models.Forecaster"


def test_resume_from_last_checkpoint(tmp_path):
    args = ["fit", "--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "debug", wandb=False)]
    first = run_cli([*args, "--trainer.max_epochs", "2"])
    steps = first.trainer.global_step
    resumed = run_cli([*args, "--trainer.max_epochs", "4", "--ckpt_path", "last"])
    assert resumed.trainer.current_epoch == 4
    assert resumed.trainer.global_step == 2 * steps
    curves = next(cb for cb in resumed.trainer.callbacks if type(cb).__name__ == "LearningCurves")
    assert [epoch for epoch, _ in curves.history["train_loss"]] == [0, 1, 2, 3]


@pytest.mark.parametrize("task", ["forecasting", "sentiment"])
def test_resumed_run_is_the_uninterrupted_run(tmp_path, imdb_dir, task):
    """Same batches (the samplers take the epoch from Lightning) and same dropout masks (the
    random generators' states are in last.ckpt): a resumed fit ends with the same weights."""
    if task == "forecasting":
        args = ["--config", str(RECIPES / "debug.yaml")]
    else:
        args = [
            "--config", str(RECIPES / "sentiment" / "imdb-bigru.yaml"),
            "--data.data_dir", str(imdb_dir), "--data.batch_size", "8",
            "--model.init_args.hidden_size", "8", "--model.init_args.embedding_dim", "8",
            "--trainer.callbacks", "null",  # no weight averaging: dropout decides alone
        ]  # fmt: skip
    whole = run_cli(
        ["fit", *args, *common(tmp_path, "whole", wandb=False), "--trainer.max_epochs", "4"]
    )
    split = ["fit", *args, *common(tmp_path, "split", wandb=False)]
    run_cli([*split, "--trainer.max_epochs", "2"])
    resumed = run_cli([*split, "--trainer.max_epochs", "4", "--ckpt_path", "last"])
    expected, actual = whole.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(actual[name], expected[name]) for name in expected)


def test_an_epoch_cut_short_is_not_saved_and_the_resumed_run_repeats_it(tmp_path):
    """max_steps (or the IMDb recipes' max_time) can stop a fit inside an epoch: last.ckpt
    stays at the last whole epoch, so that resuming repeats the cut epoch instead of skipping
    the rest of it."""
    args = ["fit", "--config", str(RECIPES / "debug.yaml")]  # three steps an epoch
    whole = run_cli([*args, *common(tmp_path, "whole", wandb=False), "--trainer.max_epochs", "3"])
    split = [*args, *common(tmp_path, "split", wandb=False)]
    run_cli([*split, "--trainer.max_steps", "4"])  # epoch 1 stops after one step
    last = torch.load(tmp_path / "runs" / "split" / "checkpoints" / "last.ckpt", weights_only=False)
    assert (last["epoch"], last["global_step"]) == (0, 3)
    resumed = run_cli([*split, "--trainer.max_epochs", "3", "--ckpt_path", "last"])
    assert resumed.trainer.global_step == whole.trainer.global_step == 9
    expected, actual = whole.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(actual[name], expected[name]) for name in expected)


def test_last_checkpoint_is_the_latest_epoch_even_without_a_new_best(tmp_path):
    args = ["fit", "--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "debug", wandb=False)]
    never_better = ["--checkpoint.monitor", "epoch", "--checkpoint.mode", "min"]  # best: epoch 0
    first = run_cli([*args, *never_better, "--trainer.max_epochs", "3"])
    ckpt_dir = Path(first.trainer.checkpoint_callback.dirpath)
    assert torch.load(ckpt_dir / "best.ckpt", weights_only=False)["epoch"] == 0
    last = torch.load(ckpt_dir / "last.ckpt", weights_only=False)
    assert last["global_step"] == first.trainer.global_step
    assert sorted(p.name for p in ckpt_dir.glob("*.ckpt")) == ["best.ckpt", "last.ckpt"]
    resumed = run_cli([*args, *never_better, "--trainer.max_epochs", "4", "--ckpt_path", "last"])
    assert resumed.trainer.global_step == first.trainer.global_step * 4 // 3


def test_last_checkpoint_every_epoch_when_validation_runs_every_few(tmp_path):
    """The language-model recipes validate every 10 epochs: last.ckpt must still hold every
    epoch, and a run resumed from one without validation must be the uninterrupted run."""
    args = [
        "fit",
        "--config",
        str(RECIPES / "debug.yaml"),
        "--trainer.check_val_every_n_epoch",
        "2",
    ]
    whole = run_cli([*args, *common(tmp_path, "whole", wandb=False), "--trainer.max_epochs", "5"])
    split = [*args, *common(tmp_path, "split", wandb=False)]
    first = run_cli([*split, "--trainer.max_epochs", "3"])  # epoch 3 has no validation
    last = Path(first.trainer.checkpoint_callback.dirpath) / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == first.trainer.global_step
    resumed = run_cli([*split, "--trainer.max_epochs", "5", "--ckpt_path", "last"])
    assert resumed.trainer.global_step == whole.trainer.global_step
    expected, actual = whole.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(actual[name], expected[name]) for name in expected)


def test_weight_averaging_saves_the_average_and_starts_no_other_wandb_run(tmp_path, monkeypatch):
    import functools

    import wandb

    started = []

    @functools.wraps(wandb.init)  # jsonargparse reads (and caches) wandb.init's signature
    def init_spy(*args, **kwargs):
        started.append(kwargs)

    monkeypatch.setattr(wandb, "init", init_spy)
    overlay = tmp_path / "ema.yaml"
    overlay.write_text(
        "trainer:\n  callbacks:\n"
        "    - class_path: lightning.pytorch.callbacks.EMAWeightAveraging\n"
        "      init_args: {decay: 0.5}\n"
    )
    args = ["--config", str(RECIPES / "debug.yaml"), "--config", str(overlay)]
    fit = run_cli(["fit", *args, *common(tmp_path, "debug", wandb=False)])
    assert started == []  # the CSV recipe; copying the model must not start the default W&B logger
    ckpt_dir = Path(fit.trainer.checkpoint_callback.dirpath)
    last = torch.load(ckpt_dir / "last.ckpt", weights_only=False)
    averaged, current = last["state_dict"], last["current_model_state"]
    assert averaged.keys() == current.keys()
    assert not all(torch.equal(averaged[k], current[k]) for k in averaged)
    model = fit.model.state_dict()  # after fit, the model holds the average
    assert all(torch.equal(model[k], averaged[k]) for k in averaged)


def test_the_wandb_folder_exists_when_the_run_starts(tmp_path, monkeypatch):
    """wandb looks for the git repository of the run's folder when the run starts, and warns
    "git root ... does not exist" when the folder is not there yet (wandb 0.16 wrote such a
    run to the system's temporary folder instead)."""
    import functools

    import wandb

    class RunStarted(Exception):
        pass

    @functools.wraps(wandb.init)  # jsonargparse reads (and caches) wandb.init's signature
    def init_spy(*args, **kwargs):
        raise RunStarted(Path(kwargs["dir"]))

    monkeypatch.setattr(wandb, "init", init_spy)
    recipe = ["--config", str(RECIPES / "forecasting" / "sine-gru.yaml")]
    with pytest.raises(RunStarted) as started:
        run_cli(["fit", *recipe, *common(tmp_path, "sine"), "--data.num_points", "300"])
    (folder,) = started.value.args
    assert folder == tmp_path / "runs" / "sine" and folder.is_dir()


@needs_wandb_reader
def test_sentiment_fit_test_predict(tmp_path, imdb_dir, capsys):
    recipe = ["--config", str(RECIPES / "sentiment" / "imdb-gru.yaml")]
    small = [
        *common(tmp_path, "imdb"),
        "--data.data_dir",
        str(imdb_dir),
        "--data.batch_size",
        "8",
        "--model.init_args.hidden_size",
        "16",
        "--model.init_args.embedding_dim",
        "8",
        "--trainer.max_epochs",
        "2",
    ]
    cli = run_cli(["fit", *recipe, *small])
    vocab_size = cli.datamodule.vocab_size
    assert cli.model.hparams.vocab_size == vocab_size  # linked from the data module
    assert cli.model.net.embedding.num_embeddings == vocab_size
    assert cli.model.class_names == ["neg", "pos"]
    ckpt_dir = tmp_path / "runs" / "imdb" / "checkpoints"
    assert (ckpt_dir / "confusion_matrix_val.png").is_file()

    best = str(ckpt_dir / "best.ckpt")
    run_cli(["test", *recipe, *small, "--ckpt_path", best])
    assert (ckpt_dir / "confusion_matrix_test.png").is_file()
    history = wandb_history(wandb_run(tmp_path / "runs" / "imdb", 1))
    assert {"test_loss", "test_acc", "test_f1"} <= history.keys()
    assert history["confusion_matrix_test._type"] == "images/separated"
    fit_history = wandb_history(wandb_run(tmp_path / "runs" / "imdb", 0))
    assert {"train_acc", "val_acc", "val_f1", "train_samples_per_sec"} <= fit_history.keys()

    # predict from the checkpoint on raw text, with no training data at hand
    capsys.readouterr()
    texts = ["good great", "bad awful", "so so"]
    missing = ["--data.data_dir", str(tmp_path / "gone")]
    run_cli(
        [
            "predict",
            *recipe,
            *small,
            *missing,
            "--ckpt_path",
            best,
            "--data.predict_texts",
            json.dumps(texts),
        ]
    )
    predictions = written_predictions(ckpt_dir)
    assert [p["text"] for p in predictions] == texts
    assert all(p["label"] in ("neg", "pos") and 0.5 <= p["probability"] <= 1 for p in predictions)
    assert '"label"' in capsys.readouterr().out


@needs_wandb_reader
def test_language_model_fit_validate_predict(tmp_path, text_file):
    recipe = ["--config", str(RECIPES / "language_model" / "timemachine-gru.yaml")]
    small = [
        *common(tmp_path, "tm"),
        "--data.data_file",
        str(text_file),
        "--data.cache_dir",
        str(tmp_path / "hf"),
        "--data.batch_size",
        "4",
        "--data.num_steps",
        "10",
        "--trainer.max_epochs",
        "2",
        "--trainer.check_val_every_n_epoch",
        "1",
    ]
    model = ["--model.init_args.hidden_size", "16", "--model.init_args.num_generate", "12"]
    cli = run_cli(["fit", *recipe, *small, *model])
    assert cli.model.hparams.vocab_size == cli.datamodule.vocab_size
    assert cli.model._carry_state()  # the recipe's sequential partition carries the state
    ckpt_dir = tmp_path / "runs" / "tm" / "checkpoints"
    table = (ckpt_dir / "generated_text.md").read_text()
    assert "| time traveller |" in table
    history = wandb_history(wandb_run(tmp_path / "runs" / "tm"))
    assert {"train_ppl", "val_ppl", "train_tokens_per_sec", "train_loss_epoch"} <= history.keys()
    assert history["generated_text._type"] == "table-file"
    assert history["train_ppl"] == pytest.approx(
        float(torch.tensor(history["train_loss_epoch"]).exp()), rel=1e-4
    )

    run_cli(["validate", *recipe, *small, "--ckpt_path", str(ckpt_dir / "last.ckpt")])

    # From a checkpoint, the model takes the checkpoint's arguments (its hidden size, not the
    # recipe's 256) but those typed on the command line, whether the checkpoint is named by
    # its path or as `last`; the vocabulary comes from the checkpoint too.
    prefixes = ["time traveller", "the"]
    for ckpt_path, generate in [(str(ckpt_dir / "last.ckpt"), ["5"]), ("last", [])]:
        run_cli(
            [
                "predict",
                *recipe,
                *small,
                "--data.data_file",
                str(tmp_path / "gone.txt"),
                "--ckpt_path",
                ckpt_path,
                *(["--model.num_generate", *generate] if generate else []),
                "--data.predict_prefixes",
                json.dumps(prefixes),
            ]
        )
        predictions = written_predictions(ckpt_dir)
        assert [p["prefix"] for p in predictions] == prefixes
        assert all(p["text"].startswith(p["prefix"]) for p in predictions)
        expected = int(generate[0]) if generate else 12
        assert [len(p["text"]) - len(p["prefix"]) for p in predictions] == [expected] * 2


def test_configs_compose_and_short_class_names(tmp_path, capsys):
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("model:\n  init_args:\n    hidden_size: 7\ntrainer:\n  max_epochs: 1\n")
    with pytest.raises(SystemExit) as exit_info:
        run_cli(
            [
                "fit",
                "--config",
                str(RECIPES / "forecasting" / "sine-gru.yaml"),
                "--config",
                str(overlay),
                "--print_config",
            ]
        )
    assert exit_info.value.code in (0, None)
    import yaml

    config = yaml.safe_load(capsys.readouterr().out)
    assert config["model"]["init_args"]["hidden_size"] == 7
    assert config["model"]["init_args"]["optimizer"]["init_args"]["lr"] == 5.0e-3  # kept
    assert config["trainer"]["max_epochs"] == 1

    with pytest.raises(SystemExit):
        run_cli(
            ["fit", "--model", "LanguageModel", "--data", "TimeMachineDataModule", "--print_config"]
        )
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["model"]["class_path"] == "lightning_gru.models.LanguageModel"
    assert config["data"]["class_path"] == "lightning_gru.data.TimeMachineDataModule"


def test_sigterm_ends_the_command_with_status_143(tmp_path):
    """Lightning stops a fit on SIGTERM with a SystemExit without a code (status 0): a shell
    chain `fit && test` or a job scheduler would take the stopped run for a finished one."""
    import signal
    import time

    args = ["fit", "--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "t", wandb=False)]
    command = [sys.executable, "-m", "lightning_gru", *args, "--trainer.max_epochs", "100000"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = tmp_path / "runs" / "t" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)  # training has started once the first epoch is saved
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr.decode()[-2000:]
    assert last.exists()  # the last whole epoch stays saved


def test_run_false_builds_the_classes_for_a_script(tmp_path):
    """LightningCLI's ``run=False`` (arguments without a subcommand): the model, the data
    module and the Trainer, with the command's callbacks, for a script to run."""
    args = ["--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "s", wandb=False)]
    cli = LightningGRUCLI(args=[*args, "--model.init_args.hidden_size", "6"], run=False)
    assert cli.subcommand is None and cli.model.hparams.hidden_size == 6
    assert any(isinstance(c, WholeEpochCheckpoint) for c in cli.trainer.callbacks)
    cli.trainer.fit(cli.model, cli.datamodule)
    assert (tmp_path / "runs" / "s" / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize(
    ("error", "status"),
    [
        pytest.param(SystemExit("stopped by a callback"), 1, id="message"),
        pytest.param(SystemExit(3), 3, id="code"),
        pytest.param(SystemExit(), 0, id="no-code"),
        pytest.param(RuntimeError("boom"), 1, id="exception"),
    ],
)
def test_the_wandb_run_ends_with_the_commands_exit_status(monkeypatch, error, status):
    """``wandb.finish`` takes an integer: a ``sys.exit("message")`` is status 1, as in Python."""
    import wandb

    import lightning_gru.cli as cli

    finished = []
    monkeypatch.setattr(wandb, "run", object())
    monkeypatch.setattr(wandb, "finish", lambda exit_code: finished.append(exit_code))

    def fails(args):
        raise error

    monkeypatch.setattr(cli, "LightningGRUCLI", fails)
    with pytest.raises(type(error)):
        run_cli(["fit"])
    assert finished == [status]


def test_python_dash_m_runs_the_command():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "lightning_gru",
            "fit",
            "--config",
            str(RECIPES / "debug.yaml"),
            "--print_config",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    assert "lightning_gru.models.Forecaster" in out


def test_wandb_goes_offline_without_credentials(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert not wandb_has_credentials()
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password abc\n")
    os.chmod(tmp_path / "netrc", 0o600)
    assert wandb_has_credentials()
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_has_credentials()

    monkeypatch.delenv("WANDB_API_KEY")
    monkeypatch.delenv("WANDB_MODE")
    args = ["fit", "--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "d", wandb=False)]
    run_cli([*args, "--trainer.max_epochs", "1"])
    assert os.environ["WANDB_MODE"] == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    run_cli([*args, "--trainer.max_epochs", "1"])
    assert os.environ["WANDB_MODE"] == "disabled"  # an existing choice wins


@pytest.mark.parametrize(
    "scheduler",
    [
        pytest.param(["torch.optim.lr_scheduler.StepLR", "step_size", "1"], id="StepLR"),
        pytest.param(["torch.optim.lr_scheduler.ReduceLROnPlateau", "patience", "0"], id="plateau"),
    ],
)
def test_optimizer_and_scheduler_come_from_the_config(tmp_path, scheduler):
    class_path, option, value = scheduler
    args = ["fit", "--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "s", wandb=False)]
    cli = run_cli(
        [
            *args,
            "--trainer.max_epochs",
            "3",
            "--model.init_args.optimizer",
            "torch.optim.SGD",
            "--model.init_args.optimizer.lr",
            "0.5",
            "--model.init_args.lr_scheduler",
            class_path,
            f"--model.init_args.lr_scheduler.{option}",
            value,
            "--model.init_args.lr_scheduler.gamma"
            if "StepLR" in class_path
            else "--model.init_args.lr_scheduler.factor",
            "0.5",
        ]
    )
    optimizer = cli.trainer.optimizers[0]
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.param_groups[0]["lr"] < 0.5


def test_a_new_fit_into_the_same_folder_replaces_best(tmp_path):
    """Not best-v1.ckpt beside the old run's best.ckpt: --ckpt_path best is the new run's."""
    args = ["fit", "--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "debug", False)]
    run_cli([*args, "--trainer.max_epochs", "1"])
    ckpt_dir = tmp_path / "runs" / "debug" / "checkpoints"
    old = torch.load(ckpt_dir / "best.ckpt", weights_only=False)["state_dict"]
    run_cli([*args, "--trainer.max_epochs", "1", "--seed_everything", "7"])
    assert sorted(p.name for p in ckpt_dir.glob("*.ckpt")) == ["best.ckpt", "last.ckpt"]
    new = torch.load(ckpt_dir / "best.ckpt", weights_only=False)["state_dict"]
    assert not all(torch.equal(new[name], old[name]) for name in old)


def test_data_errors_reach_the_user_unwrapped(tmp_path):
    """jsonargparse wraps errors of the vocabulary link in a ValueError; the command shows the
    data module's own error (a missing file, an unreachable hub) in one line."""
    recipe = ["--config", str(RECIPES / "language_model" / "timemachine-gru.yaml")]
    missing = ["fit", *recipe, *common(tmp_path, "tm", False), "--data.data_file", "gone.txt"]
    with pytest.raises(FileNotFoundError, match="'gone.txt' does not exist.*working directory"):
        run_cli(missing)
    hub = ["fit", "--config", str(RECIPES / "sentiment" / "imdb-gru.yaml")]
    with pytest.raises(SourceUnreachableError, match="--data.data_dir"):
        run_cli([*hub, *common(tmp_path, "imdb", False)])
    with pytest.raises(SystemExit) as exit_info:
        cli_main(missing)
    assert str(exit_info.value.code).startswith("lightning-gru: error: data_file 'gone.txt'")
    (tmp_path / "empty.txt").write_text("")
    empty = [*missing[:-1], str(tmp_path / "empty.txt")]
    with pytest.raises(ValueError, match=r"^\S*empty.txt: cannot be read as text files: no rows"):
        run_cli(empty)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(empty)
    message = str(exit_info.value.code)
    assert message.startswith("lightning-gru: error: ")
    assert message.endswith("empty.txt: cannot be read as text files: no rows (empty file?)")
    (tmp_path / "series.csv").write_text("0.5\n0.1,0.2\n")  # read in setup, not in a link
    sine = ["fit", "--model", "Forecaster", "--data", "SineWaveDataModule"]
    sine += ["--data.data_file", str(tmp_path / "series.csv"), "--trainer.logger", "false"]
    with pytest.raises(SystemExit) as exit_info:
        cli_main([*sine, "--checkpoint.dirpath", str(tmp_path / "sine")])
    assert str(exit_info.value.code).endswith("series.csv: line 2 has 2 columns, expected one")
    (tmp_path / "series.csv").write_text("0.5\n" * 3)  # too short for one window
    with pytest.raises(SystemExit) as exit_info:
        cli_main([*sine, "--checkpoint.dirpath", str(tmp_path / "sine")])
    assert str(exit_info.value.code).startswith("lightning-gru: error: a series of 3 points")


def test_data_too_short_or_nothing_to_predict_end_the_command_in_one_line(tmp_path, text_file):
    recipe = ["--config", str(RECIPES / "language_model" / "timemachine-gru.yaml")]
    data = ["--data.data_file", str(text_file), "--data.cache_dir", str(tmp_path / "hf")]
    args = [*recipe, *common(tmp_path, "tm", False), *data, "--trainer.max_epochs", "1"]
    too_large = ["--data.batch_size", "32", "--data.num_steps", "35"]
    with pytest.raises(SystemExit) as exit_info:  # the recipe's 10% of it: too little text
        cli_main(["fit", *recipe, *common(tmp_path, "tm-wandb"), *data, *too_large])
    message = str(exit_info.value.code)
    assert message.startswith("lightning-gru: error: the validation text")
    assert "too few for one batch" in message
    assert not list(tmp_path.rglob("offline-run-*"))  # refused before the W&B run started
    run_cli(["fit", *args, *too_large, "--trainer.limit_val_batches", "0"])  # never read then
    run_cli(["fit", *args, "--data.batch_size", "2", "--data.num_steps", "5"])
    predict = ["predict", *args, "--ckpt_path", "last"]
    for prefixes, expected in [("[]", "needs predict_prefixes"), ('["a", ""]', "empty prefix")]:
        with pytest.raises(SystemExit) as exit_info:
            cli_main([*predict, "--data.predict_prefixes", prefixes])
        assert str(exit_info.value.code).startswith("lightning-gru: error: ")
        assert expected in str(exit_info.value.code)


def test_argument_values_a_class_refuses_end_the_command_in_one_line(tmp_path):
    """A value of the right type that the data module, the model or the Trainer refuses: the
    class's own message, without a traceback (``run_cli`` raises it for scripts)."""
    debug = ["fit", "--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "debug", False)]
    bad_batch = [*debug, "--data.init_args.batch_size", "0"]
    with pytest.raises(ArgumentValueError, match="^batch_size must be >= 1, got 0$") as info:
        run_cli(bad_batch)
    assert isinstance(info.value, ValueError)
    cases = {
        "batch_size must be >= 1, got 0": bad_batch,
        "hidden_size must be greater than zero": [*debug, "--model.init_args.hidden_size", "0"],
        "`max_epochs` must be a non-negative integer or -1": [*debug, "--trainer.max_epochs", "-5"],
    }
    for message, args in cases.items():
        with pytest.raises(SystemExit) as exit_info:
            cli_main(args)
        assert str(exit_info.value.code).startswith(f"lightning-gru: error: {message}")


@pytest.mark.parametrize(
    ("option", "message", "cause"),
    [
        pytest.param(["--model.optimizer.init_args.lr", "-1"],
                     "model.optimizer: Invalid learning rate: -1.0", ValueError, id="lr"),
        pytest.param(["--model.lr_scheduler", "torch.optim.lr_scheduler.OneCycleLR",
                      "--model.lr_scheduler.max_lr", "0.1"],
                     "model.lr_scheduler: You must define either total_steps", ValueError,
                     id="one-cycle"),
        pytest.param(["--model.lr_scheduler", "torch.optim.lr_scheduler.StepLR",
                      "--model.lr_scheduler.step_size", "0"],
                     "model.lr_scheduler: StepLR's first step: integer modulo by zero",
                     ZeroDivisionError, id="step-size-0"),
        pytest.param(["--model.lr_scheduler", "torch.optim.lr_scheduler.ReduceLROnPlateau",
                      "--trainer.limit_val_batches", "0"],
                     "model.lr_scheduler: ReduceLROnPlateau watches a validation metric",
                     ValueError, id="plateau-without-validation"),
    ],
)  # fmt: skip
def test_an_optimizer_argument_refused_ends_fit_before_it_starts(tmp_path, option, message, cause):
    """Guards against: the optimizer and scheduler built (and the scheduler stepped) at the
    start of the fit only, whose refusal of a value came as a traceback from inside
    Lightning's loop, after an epoch for ReduceLROnPlateau."""
    args = ["fit", "--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "d", False), *option]
    with pytest.raises(SystemExit) as exit_info:
        cli_main(args)
    assert str(exit_info.value.code).startswith(f"lightning-gru: error: {message}")
    assert not (tmp_path / "runs" / "d").exists()  # no epoch ran, nothing was logged
    with pytest.raises(ArgumentValueError, match=f"^{message}") as info:
        run_cli(args)
    refused = info.value.__cause__.__cause__ or info.value.__cause__
    assert type(refused) is cause  # the optimizer's or scheduler's own error


def test_only_this_packages_models_have_their_optimizer_built_before_fit():
    """Another model's ``optimizer`` attribute may be anything: it is not called."""
    from functools import partial

    from lightning.pytorch.demos.boring_classes import BoringModel

    from lightning_gru.cli import _check_optimizer
    from lightning_gru.models import Forecaster

    def refuses(*args):
        raise ValueError("not for the command to call")

    other = BoringModel()
    other.optimizer = other.lr_scheduler = refuses
    _check_optimizer(other)
    with pytest.raises(ArgumentValueError, match="^model.optimizer: Invalid learning rate"):
        _check_optimizer(Forecaster(optimizer=partial(torch.optim.SGD, lr=-0.5)))
    _check_optimizer(Forecaster(optimizer=partial(torch.optim.SGD, lr=0.5)))  # no error


# --- the command's defaults and checks (found untested by mutation testing) ---------------------


def printed_config(capsys, args: list[str]) -> dict:
    with pytest.raises(SystemExit):
        run_cli(["fit", "--model", "Forecaster", "--data", "SineWaveDataModule", *args,
                 "--print_config"])  # fmt: skip
    return yaml.safe_load(capsys.readouterr().out)


def test_the_command_defaults(capsys):
    """The command's defaults (the recipes override several, so no other test sees them):
    devices, the W&B logger's project and folder, the seed, the checkpoint callbacks."""
    config = printed_config(capsys, [])
    assert config["seed_everything"] == 42
    trainer = config["trainer"]
    assert trainer["devices"] == 1
    assert trainer["logger"]["class_path"] == "lightning.pytorch.loggers.WandbLogger"
    assert trainer["logger"]["init_args"]["project"] == "lightning-gru"
    assert trainer["logger"]["init_args"]["save_dir"] == "runs"
    best, last = config["checkpoint"], config["last_checkpoint"]
    assert (best["monitor"], best["mode"], best["filename"]) == ("val_loss", "min", "best")
    assert (best["save_top_k"], best["save_last"]) == (1, False)
    assert best["enable_version_counter"] is False
    assert (last["filename"], last["monitor"], last["save_top_k"]) == ("last", None, 1)
    assert last["save_on_train_epoch_end"] is True and last["enable_version_counter"] is False


def test_without_a_logger_or_a_checkpoint_folder_no_config_is_written(tmp_path, monkeypatch):
    """Guards against: the config written to Lightning's log folder, the working directory, when
    there is no logger and no checkpoint folder."""
    monkeypatch.chdir(tmp_path)
    run_cli(
        debug_fit(tmp_path, "--checkpoint.dirpath", "null", "--checkpoint.save_top_k", "0",
                  "--last_checkpoint.save_top_k", "0")
    )  # fmt: skip
    assert not list(tmp_path.rglob("config*.yaml"))


def test_a_second_fit_into_the_same_checkpoint_folder_replaces_its_config(tmp_path):
    """Guards against: ``overwrite`` off: a second fit without a logger into the same checkpoint
    folder fails on the config.yaml of the first."""
    args = debug_fit(tmp_path, "--checkpoint.dirpath", str(tmp_path / "ckpt"))
    run_cli(args)
    run_cli([*args, "--model.init_args.hidden_size", "5"])
    saved = yaml.safe_load((tmp_path / "ckpt" / "config.yaml").read_text())
    assert saved["model"]["init_args"]["hidden_size"] == 5


def test_a_data_file_error_keeps_its_class(tmp_path):
    """Guards against: a ``DataFileError`` of the vocabulary link (a ValueError subclass) re-raised
    as an ``ArgumentValueError``, so a script catching ``DataFileError`` would miss it."""
    (tmp_path / "empty.txt").write_text("")
    args = ["fit", "--config", str(RECIPES / "language_model" / "timemachine-gru.yaml"),
            "--trainer.logger", "false", "--checkpoint.dirpath", str(tmp_path / "ckpt"),
            "--data.data_file", str(tmp_path / "empty.txt"),
            "--data.cache_dir", str(tmp_path / "hf")]  # fmt: skip
    with pytest.raises(DataFileError, match="no rows") as info:
        run_cli(args)
    assert not isinstance(info.value, ArgumentValueError)


def test_the_class_names_flow_from_the_data_module_into_the_model(tmp_path, monkeypatch):
    """Guards against: the ``data.class_names`` -> ``model.class_names`` link dropped (the model's
    default hides it while both say neg/pos)."""
    rows = [(f"a good film {i}", 1) for i in range(8)] + [(f"a bad film {i}", 0) for i in range(8)]
    (tmp_path / "imdb").mkdir()
    for split in ("train", "test"):
        frame = pd.DataFrame(rows, columns=["text", "label"])
        frame.to_parquet(tmp_path / "imdb" / f"{split}.parquet")
    monkeypatch.setattr(imdb, "CLASS_NAMES", ("bad", "good"))
    cli = run_cli(
        ["fit", "--config", str(RECIPES / "sentiment" / "imdb-gru.yaml"),
         "--data.data_dir", str(tmp_path / "imdb"), "--data.cache_dir", str(tmp_path / "hf"),
         "--trainer.logger", "false", "--checkpoint.dirpath", str(tmp_path / "ckpt"),
         "--trainer.max_epochs", "0", "--trainer.enable_progress_bar", "false"]
    )  # fmt: skip
    assert cli.model.class_names == ["bad", "good"]
    assert cli.model.hparams.vocab_size == cli.datamodule.vocab_size


@pytest.mark.parametrize(
    ("option", "message"),
    [
        pytest.param(["--trainer.accelerator", "foo"], "trainer: You selected an", id="acc"),
        pytest.param(["--seed_everything", "-1"], "seed_everything: -1 is not in", id="seed"),
    ],
)
def test_values_the_trainer_refuses_are_one_line(tmp_path, option, message):
    """LightningCLI let the ValueErrors of the Trainer's constructor and of the seeding
    through as tracebacks."""
    args = ["fit", "--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "d", wandb=False)]
    with pytest.raises(ArgumentValueError, match=message):
        run_cli([*args, *option])
