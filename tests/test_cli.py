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
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from models._fixtures import one_thread  # noqa: F401  (autouse: tests/models/_fixtures.py)

import lightning_gru.data.imdb as imdb
from lightning_gru.cli import (
    ArgumentValueError,
    LightningGRUCLI,
    _check_checkpoint_file,
    _model_options_given,
    cli_main,
    run_cli,
    wandb_has_credentials,
)
from lightning_gru.data import DataFileError, SourceUnreachableError
from lightning_gru.models.callbacks import WholeEpochCheckpoint

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
WANDB = Path(sys.executable).with_name("wandb")

# run_cli(args) inside pytest: LightningCLI warns that sys.argv holds pytest's arguments
pytestmark = pytest.mark.filterwarnings("ignore:LightningCLI's args parameter")


@pytest.fixture(autouse=True)
def offline(tmp_path_factory, monkeypatch):
    """W&B offline with private folders; Hugging Face offline with a private cache."""
    import datasets.config
    import huggingface_hub.constants

    home = tmp_path_factory.mktemp("wandb-home")
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(home / var.lower()))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.mktemp("hf"))


@pytest.fixture
def imdb_dir(tmp_path) -> Path:
    """train/test parquet files: 'good great' reviews are positive, 'bad awful' negative."""
    rows = [(f"a good great film number {i}, I loved it", 1) for i in range(24)]
    rows += [(f"a bad awful film number {i}, I hated it", 0) for i in range(24)]
    folder = tmp_path / "imdb"
    folder.mkdir()
    frame = pd.DataFrame(rows, columns=["text", "label"])
    frame.to_parquet(folder / "train.parquet")
    frame.iloc[::3].to_parquet(folder / "test.parquet")
    return folder


@pytest.fixture
def text_file(tmp_path) -> Path:
    path = tmp_path / "timemachine.txt"
    path.write_text(
        "The Time Machine, by H. G. Wells [1898]\n\n"
        "The Time Traveller (for so it will be convenient to speak of him) was expounding a\n"
        "recondite matter to us. His grey eyes shone and twinkled.\n" * 12
    )
    return path


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
    run_cli(["fit", *recipe, *small])
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


@pytest.mark.parametrize("subcommand", ["validate", "test", "predict"])
def test_evaluating_without_a_checkpoint_is_refused(tmp_path, subcommand, capsys):
    """Untrained weights would print meaningless numbers and overwrite predictions.jsonl."""
    args = [subcommand, "--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "d", False)]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(args)
    assert exit_info.value.code == 2
    assert f"`{subcommand}` needs the weights of a trained model" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "d" / "checkpoints" / "predictions.jsonl").exists()


def test_best_and_last_are_the_files_in_the_checkpoint_folder(tmp_path, capsys):
    args = ["--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "debug", wandb=False)]
    with pytest.raises(SystemExit):  # nothing fitted yet
        run_cli(["test", *args, "--ckpt_path", "best"])
    assert "there is no" in capsys.readouterr().err
    run_cli(["fit", *args, "--trainer.max_epochs", "2"])
    ckpt_dir = tmp_path / "runs" / "debug" / "checkpoints"
    for name in ("best", "last"):
        cli = run_cli(["test", *args, "--ckpt_path", name])
        assert cli.trainer.ckpt_path == str(ckpt_dir / f"{name}.ckpt")


@pytest.mark.parametrize(
    ("subcommand", "name"),
    [("test", "last"), ("predict", "last"), ("validate", "best"), ("fit", "best")],
)
def test_best_and_last_without_a_checkpoint_folder_are_refused(subcommand, name, capsys):
    """Lightning would evaluate untrained weights, with a warning, where it finds no `last`."""
    args = [
        subcommand,
        "--model",
        "Forecaster",
        "--data",
        "SineWaveDataModule",
        "--ckpt_path",
        name,
    ]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(args)
    assert exit_info.value.code == 2
    assert f"--ckpt_path {name} names the file in checkpoint.dirpath, which is not set" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("option", ["every_n_train_steps 4", "train_time_interval 0:00:30"])
def test_mid_epoch_last_checkpoints_are_refused(tmp_path, option, capsys):
    """They would not resume exactly: the data loaders start their epoch from the beginning."""
    name, value = option.split()
    args = ["fit", "--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "debug", False)]
    with pytest.raises(SystemExit):
        run_cli([*args, f"--last_checkpoint.{name}", value])
    assert f"last_checkpoint.{name}: last.ckpt is saved at the end of whole epochs" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("top_k", ["2", "3", "-1"])
def test_several_best_checkpoints_in_one_file_are_refused(tmp_path, top_k, capsys):
    """Each would overwrite best.ckpt, which would then hold the latest epoch, not the best."""
    args = ["fit", "--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "debug", False)]
    with pytest.raises(SystemExit) as exit_info:
        run_cli([*args, "--checkpoint.save_top_k", top_k])
    assert exit_info.value.code == 2
    assert f"checkpoint.save_top_k {top_k}: every checkpoint it keeps" in capsys.readouterr().err
    cli = run_cli(
        [*args, "--checkpoint.save_top_k", top_k, "--checkpoint.filename", "{epoch}",
         "--trainer.max_epochs", "2"]
    )  # fmt: skip
    best = cli.trainer.checkpoint_callback
    assert isinstance(best, WholeEpochCheckpoint)  # nothing of an epoch cut short
    # its state where a plain ModelCheckpoint's was: checkpoints written before resume with it
    assert best.state_key == ModelCheckpoint(monitor=best.monitor, mode=best.mode).state_key
    names = sorted(p.name for p in (tmp_path / "runs" / "debug" / "checkpoints").glob("*.ckpt"))
    assert names == ["epoch=0.ckpt", "epoch=1.ckpt", "last.ckpt"]


def test_checkpointing_off_says_how(tmp_path, capsys):
    """Lightning would refuse it with "remove ModelCheckpoint from the callbacks", which a
    command line cannot do; two options save nothing."""
    args = ["fit", "--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "debug", False)]
    with pytest.raises(SystemExit) as exit_info:
        run_cli([*args, "--trainer.enable_checkpointing", "false"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert "--checkpoint.save_top_k 0 --last_checkpoint.save_top_k 0" in message
    run_cli([*args, "--checkpoint.save_top_k", "0", "--last_checkpoint.save_top_k", "0"])
    assert not list((tmp_path / "runs" / "debug" / "checkpoints").glob("*.ckpt"))


def test_a_checkpoint_folder_under_home_is_found_by_name(tmp_path, monkeypatch):
    """``~`` in a recipe's checkpoint.dirpath (YAML does not expand it; ModelCheckpoint does)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    args = [
        "--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "debug", False),
        "--checkpoint.dirpath", "~/checkpoints",
    ]  # fmt: skip
    run_cli(["fit", *args])
    cli = run_cli(["test", *args, "--ckpt_path", "last"])
    assert cli.trainer.ckpt_path == str(tmp_path / "home" / "checkpoints" / "last.ckpt")


@pytest.mark.parametrize("kind", ["folder", "truncated", "text"])
def test_a_checkpoint_path_that_is_no_checkpoint_is_refused(tmp_path, kind, capsys):
    args = ["fit", "--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "debug", False)]
    run_cli(args)
    path = tmp_path / "runs" / "debug" / "checkpoints"
    if kind != "folder":
        written = (path / "last.ckpt").read_bytes()
        path = tmp_path / f"{kind}.ckpt"
        path.write_bytes(written[: len(written) // 2] if kind == "truncated" else b"weights\n")
    with pytest.raises(SystemExit) as exit_info:
        run_cli(["test", *args[1:], "--ckpt_path", str(path)])
    assert exit_info.value.code == 2
    expected = "is a folder" if kind == "folder" else "is not a checkpoint"
    assert f"--ckpt_path {path} {expected}" in capsys.readouterr().err


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


def test_language_model_test_is_refused_with_a_hint(tmp_path, text_file, capsys):
    recipe = ["--config", str(RECIPES / "language_model" / "timemachine-gru.yaml")]
    args = [*recipe, *common(tmp_path, "tm", False), "--data.data_file", str(text_file)]
    with pytest.raises(SystemExit):
        run_cli(["test", *args, "--ckpt_path", str(tmp_path / "any.ckpt")])
    assert "has no test split; `validate`" in capsys.readouterr().err


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
    args = [*recipe, *common(tmp_path, "tm", False), "--data.data_file", str(text_file)]
    args += ["--data.cache_dir", str(tmp_path / "hf"), "--trainer.max_epochs", "1"]
    with pytest.raises(SystemExit) as exit_info:  # the recipe's 10% of it: too little text
        cli_main(["fit", *args, "--data.batch_size", "32", "--data.num_steps", "35"])
    message = str(exit_info.value.code)
    assert message.startswith("lightning-gru: error: the validation text")
    assert "too few for one batch" in message
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
    ("option", "message"),
    [
        (["--model.optimizer.init_args.lr", "-1"], "model.optimizer: Invalid learning rate: -1.0"),
        (
            ["--model.lr_scheduler", "torch.optim.lr_scheduler.OneCycleLR",
             "--model.lr_scheduler.max_lr", "0.1"],
            "model.lr_scheduler: You must define either total_steps",
        ),
    ],
)  # fmt: skip
def test_an_optimizer_argument_refused_ends_fit_before_it_starts(tmp_path, option, message):
    """Guards against: the optimizer built at the start of the fit only, whose refusal of a
    value came as a traceback from inside Lightning's loop."""
    args = ["fit", "--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "d", False), *option]
    with pytest.raises(SystemExit) as exit_info:
        cli_main(args)
    assert str(exit_info.value.code).startswith(f"lightning-gru: error: {message}")
    assert not (tmp_path / "runs" / "d").exists()  # no epoch ran, nothing was logged
    with pytest.raises(ArgumentValueError, match=f"^{message}") as info:
        run_cli(args)
    assert type(info.value.__cause__) is ValueError  # the optimizer's own error


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


@pytest.mark.parametrize("subcommand", ["fit", "validate"])
def test_a_checkpoint_of_another_experiment_is_refused(tmp_path, text_file, subcommand, capsys):
    """Lightning takes the model's class from the checkpoint; a sine forecaster would meet the
    time machine's token ids and fail inside its GRU with a dtype error."""
    run_cli(["fit", "--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "sine", False)])
    checkpoint = tmp_path / "runs" / "sine" / "checkpoints" / "last.ckpt"
    recipe = ["--config", str(RECIPES / "language_model" / "timemachine-gru.yaml")]
    args = [*recipe, *common(tmp_path, "tm", False), "--data.data_file", str(text_file)]
    with pytest.raises(SystemExit) as exit_info:
        run_cli([subcommand, *args, "--ckpt_path", str(checkpoint)])
    assert exit_info.value.code == 2
    assert (
        f"--ckpt_path {checkpoint} holds a Forecaster trained on "
        "lightning_gru.data.SineWaveDataModule, which cannot read the batches of "
        "lightning_gru.data.TimeMachineDataModule: give the configuration it was trained with"
    ) in " ".join(capsys.readouterr().err.split())


@pytest.fixture
def python_checkpoint(tmp_path, make_trainer) -> Path:
    """A forecaster's checkpoint saved from Python (``Trainer.fit`` in a script), whose model
    arguments come without the class that the command's checkpoints name."""
    from lightning_gru.data import SineWaveDataModule
    from lightning_gru.models import Forecaster

    trainer = make_trainer(max_steps=1)
    trainer.fit(Forecaster(hidden_size=16), SineWaveDataModule(num_points=300, seq_len=10))
    path = tmp_path / "from-python.ckpt"
    trainer.save_checkpoint(path)
    assert "_class_path" not in torch.load(path, weights_only=True)["hyper_parameters"]
    return path


def test_a_checkpoint_saved_from_python_is_evaluated_with_its_arguments(
    tmp_path, python_checkpoint
):
    """Guards against: Lightning's "Parsing of ckpt_path hyperparameters failed!" on model
    arguments without a class; the recipe's hidden_size 8 yields to the checkpoint's 16."""
    args = ["--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "debug", False)]
    cli = run_cli(["validate", *args, "--ckpt_path", str(python_checkpoint)])
    assert cli.model.hparams.hidden_size == 16
    assert "val_loss" in cli.trainer.callback_metrics


def test_a_checkpoint_saved_from_python_of_another_model_is_refused(
    tmp_path, text_file, python_checkpoint, capsys
):
    recipe = ["--config", str(RECIPES / "language_model" / "timemachine-gru.yaml")]
    args = [*recipe, *common(tmp_path, "tm", False), "--data.data_file", str(text_file)]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(["validate", *args, "--ckpt_path", str(python_checkpoint)])
    assert exit_info.value.code == 2
    assert (
        f"--ckpt_path {python_checkpoint} holds the arguments of another model: input_size, "
        "mlp_hidden_sizes are no argument of LanguageModel; pass --model with the class"
    ) in " ".join(capsys.readouterr().err.split())


def test_other_experiment(monkeypatch):
    """Two of the package's data modules; a subclass, or a user's own module, is let through."""
    import lightning_gru.data
    from lightning_gru.cli import _import_class
    from lightning_gru.cli import _other_experiment as other_classes
    from lightning_gru.data import SineWaveDataModule

    def _other_experiment(trained_on: str | None, data: str | None) -> bool:
        return other_classes(_import_class(trained_on), _import_class(data))  # as the CLI calls

    longer_sine = type("LongerSine", (SineWaveDataModule,), {"__module__": "lightning_gru.data"})
    monkeypatch.setattr(lightning_gru.data, "LongerSine", longer_sine, raising=False)
    sine, tm = "lightning_gru.data.SineWaveDataModule", "lightning_gru.data.TimeMachineDataModule"
    assert _other_experiment(sine, tm) and _other_experiment(tm, sine)
    assert not _other_experiment(sine, sine)
    assert not _other_experiment(sine, "lightning_gru.data.LongerSine")
    assert not _other_experiment("lightning_gru.data.LongerSine", sine)
    assert not _other_experiment(sine, f"{__name__}.SineOfMyOwn")  # not importable: unknown
    assert not _other_experiment(sine, "tests.test_cli.written_predictions")  # not a class
    assert not _other_experiment(None, sine) and not _other_experiment(sine, None)
    assert not _other_experiment(sine, "no_such_package.data.Sine")  # cannot be imported


def test_has_test_split():
    from lightning_gru.cli import _has_test_split

    assert not _has_test_split("lightning_gru.data.TimeMachineDataModule")
    assert _has_test_split("lightning_gru.data.SineWaveDataModule")
    assert _has_test_split("lightning_gru.data.IMDbDataModule")
    assert _has_test_split("SineWaveDataModule") and _has_test_split(None)  # unknown: let it run


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


class _Refused(Exception):
    pass


class _Parser:
    def error(self, message):
        raise _Refused(message)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-pickle"])
def test_a_checkpoint_in_either_torch_format_is_accepted(tmp_path, legacy):
    """Guards against: a checkpoint that ``torch.save`` wrote in its legacy (pickle) format refused
    as "not a checkpoint"."""
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": {}}, path, _use_new_zipfile_serialization=not legacy)
    _check_checkpoint_file(_Parser(), str(path))  # no error
    path.write_bytes(b"weights\n")
    with pytest.raises(_Refused, match="is not a checkpoint"):
        _check_checkpoint_file(_Parser(), str(path))


def debug_fit(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "fit", "--config", str(RECIPES / "debug.yaml"), "--trainer.logger", "false",
        "--trainer.enable_progress_bar", "false", "--trainer.max_epochs", "1", *extra,
    ]  # fmt: skip


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


def test_fit_from_best_without_the_file_is_refused(tmp_path, capsys):
    """Guards against: ``fit --ckpt_path best`` with no best.ckpt in the folder let through to
    Lightning (which would start from untrained weights or fail with a traceback)."""
    args = debug_fit(tmp_path, "--checkpoint.dirpath", str(tmp_path / "empty"))
    with pytest.raises(SystemExit) as exit_info:
        run_cli([*args, "--ckpt_path", "best"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--ckpt_path best: there is no" in err and "when `fit` validates" in err


def test_model_options_are_noted_in_both_spellings():
    """Guards against: ``--model.init_args.X`` noted as ``model.init_args.init_args.X`` (so the
    value typed on the command line would lose to the checkpoint's)."""
    args = ["--model.init_args.hidden_size", "4", "--model.num_generate=5",
            "--model.class_path", "X", "--model.help", "--data.batch_size", "2"]  # fmt: skip
    assert _model_options_given(args) == [
        "model.init_args.hidden_size",
        "model.init_args.num_generate",
    ]


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


@pytest.mark.parametrize("option", ["check_val_every_n_epoch", "accumulate_grad_batches"])
def test_a_trainer_count_below_one_is_refused(tmp_path, capsys, option):
    """Lightning takes 0 and then divides by it in its loops (a ZeroDivisionError)."""
    args = ["fit", "--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "d", wandb=False)]
    with pytest.raises(SystemExit):
        run_cli([*args, f"--trainer.{option}", "0"])
    assert f"trainer.{option} must be at least 1, got 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "expected"),
    [(["--model", "LanguageModel"], "TimeMachineDataModule"), (["--data", "IMDbDataModule"], "")],
    ids=["model", "data"],
)
def test_a_model_and_data_of_two_experiments_are_refused(tmp_path, capsys, option, expected):
    """They failed inside the model's forward or in Lightning's loops, with a traceback."""
    args = ["fit", "--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "d", wandb=False)]
    with pytest.raises(SystemExit) as exit_info:
        run_cli([*args, *option])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert " of SineWaveDataModule" in message or "not those of IMDbDataModule" in message
    assert expected in message


def test_a_fitted_model_checked_against_its_checkpoint(tmp_path, capsys):
    """Over a checkpoint: a typed option changing the model's shape (Lightning failed loading
    the weights, with a traceback), a typed optimizer option on a resumed fit (Lightning
    restores the optimizer's settings: the value was silently not used), and `best` where
    checkpoint.filename writes no best.ckpt (an older fit's was silently taken)."""
    args = ["--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "d", wandb=False)]
    run_cli(["fit", *args, "--trainer.max_epochs", "1"])
    with pytest.raises(ArgumentValueError, match=r"does not fit the model configured .*"
                       r"leave out --model.init_args.hidden_size"):  # fmt: skip
        run_cli(["test", *args, "--ckpt_path", "best", "--model.init_args.hidden_size", "5"])
    lr = ["--model.init_args.optimizer.init_args.lr", "0.5"]
    with pytest.raises(SystemExit):
        run_cli(["fit", *args, "--ckpt_path", "last", "--trainer.max_epochs", "2", *lr])
    assert "a resumed fit restores the optimizer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli(["test", *args, "--ckpt_path", "best", "--checkpoint.filename", "{epoch}"])
    assert "which checkpoint.filename '{epoch}' does not write" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["vocab_size", "class_names"])
def test_what_the_data_module_gives_the_model_is_not_typed(tmp_path, capsys, option):
    """The link from the data module replaced a typed value, silently."""
    value = "100" if option == "vocab_size" else '["a", "b"]'
    args = ["--model", "SentimentClassifier", "--data", "IMDbDataModule", f"--model.{option}"]
    with pytest.raises(SystemExit):
        run_cli(["fit", *args, value, *common(tmp_path, "d", wandb=False)])
    assert f"--model.init_args.{option}: the data module gives it" in capsys.readouterr().err
