"""The command's refusals (``lightning_gru._cli_checks`` and the checkpoint checks of
``LightningGRUCLI``): each configuration that Lightning would run to no purpose, or end with a
traceback from inside a fit, ends the command with one line that says what to do."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from _cli_helpers import RECIPES, common, debug_fit
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_gru._cli_checks import check_checkpoint_file, model_options_given
from lightning_gru.cli import ArgumentValueError, run_cli
from lightning_gru.data import DataFileError
from lightning_gru.models.callbacks import WholeEpochCheckpoint

# run_cli(args) inside pytest: LightningCLI warns that sys.argv holds pytest's arguments
pytestmark = pytest.mark.filterwarnings("ignore:LightningCLI's args parameter")


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


def test_language_model_test_is_refused_with_a_hint(tmp_path, text_file, capsys):
    recipe = ["--config", str(RECIPES / "language_model" / "timemachine-gru.yaml")]
    args = [*recipe, *common(tmp_path, "tm", False), "--data.data_file", str(text_file)]
    checkpoint = tmp_path / "any.ckpt"  # a file (a missing one is refused first)
    torch.save({"state_dict": {}}, checkpoint)
    with pytest.raises(SystemExit):
        run_cli(["test", *args, "--ckpt_path", str(checkpoint)])
    assert "has no test split; `validate`" in capsys.readouterr().err


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
    from lightning_gru._cli_checks import import_class
    from lightning_gru._cli_checks import other_experiment as other_classes
    from lightning_gru.data import SineWaveDataModule

    def _other_experiment(trained_on: str | None, data: str | None) -> bool:
        return other_classes(import_class(trained_on), import_class(data))  # as the CLI calls

    longer_sine = type("LongerSine", (SineWaveDataModule,), {"__module__": "lightning_gru.data"})
    monkeypatch.setattr(lightning_gru.data, "LongerSine", longer_sine, raising=False)
    sine, tm = "lightning_gru.data.SineWaveDataModule", "lightning_gru.data.TimeMachineDataModule"
    assert _other_experiment(sine, tm) and _other_experiment(tm, sine)
    assert not _other_experiment(sine, sine)
    assert not _other_experiment(sine, "lightning_gru.data.LongerSine")
    assert not _other_experiment("lightning_gru.data.LongerSine", sine)
    assert not _other_experiment(sine, f"{__name__}.SineOfMyOwn")  # not importable: unknown
    assert not _other_experiment(sine, "lightning_gru.cli.run_cli")  # not a class
    assert not _other_experiment(None, sine) and not _other_experiment(sine, None)
    assert not _other_experiment(sine, "no_such_package.data.Sine")  # cannot be imported


def test_has_test_split():
    from lightning_gru._cli_checks import has_test_split, import_class

    def _has_test_split(class_path: str | None) -> bool:
        return has_test_split(import_class(class_path))  # as the CLI calls

    assert not _has_test_split("lightning_gru.data.TimeMachineDataModule")
    assert _has_test_split("lightning_gru.data.SineWaveDataModule")
    assert _has_test_split("lightning_gru.data.IMDbDataModule")
    assert _has_test_split("SineWaveDataModule") and _has_test_split(None)  # unknown: let it run


class _Refused(Exception):
    pass


def _refuse(message):
    raise _Refused(message)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-pickle"])
def test_a_checkpoint_in_either_torch_format_is_accepted(tmp_path, legacy):
    """Guards against: a checkpoint that ``torch.save`` wrote in its legacy (pickle) format refused
    as "not a checkpoint"."""
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": {}}, path, _use_new_zipfile_serialization=not legacy)
    check_checkpoint_file(_refuse, str(path))  # no error
    path.write_bytes(b"weights\n")
    with pytest.raises(_Refused, match="is not a checkpoint"):
        check_checkpoint_file(_refuse, str(path))


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
    assert model_options_given(args) == [
        "model.init_args.hidden_size",
        "model.init_args.num_generate",
    ]


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


@pytest.mark.parametrize(
    ("option", "message"),
    [
        pytest.param(["--trainer.val_check_interval", "50"],
                     "fit: `val_check_interval` (50) must be less than or equal to the number "
                     "of the training batches (3)", id="val-check-interval"),
        pytest.param(["--ckpt_path", "hpc"],
                     'fit: `.fit(ckpt_path="hpc")` is set but no HPC checkpoint was found',
                     id="hpc"),
        pytest.param(["--model.lr_scheduler", "torch.optim.lr_scheduler.ReduceLROnPlateau",
                      "--data.val_fraction", "0"],
                     "fit: ReduceLROnPlateau watches val_rollout_mse, and the validation data "
                     "holds no batch", id="plateau-without-validation-data"),
    ],
)  # fmt: skip
def test_values_the_trainer_refuses_on_starting_end_the_command_in_one_line(
    tmp_path, option, message
):
    """Guards against: the ValueErrors that Lightning's Trainer (its checks of its arguments)
    or the model's checks raise when a fit starts let through as tracebacks."""
    args = ["fit", "--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "d", False)]
    with pytest.raises(ArgumentValueError) as info:
        run_cli([*args, *option])
    assert str(info.value).startswith(message)
    assert type(info.value.__cause__) is ValueError


def test_a_models_own_value_error_inside_fit_keeps_its_traceback(tmp_path, monkeypatch):
    """Only the Trainer's own checks become one line: an error of the model's code is a bug
    to debug, with its traceback."""
    from lightning_gru.models import Forecaster

    def broken(self, batch, batch_idx):
        raise ValueError("a bug in the model")

    monkeypatch.setattr(Forecaster, "training_step", broken)
    args = ["fit", "--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "d", False)]
    with pytest.raises(ValueError, match="a bug in the model") as info:
        run_cli(args)
    assert type(info.value) is ValueError


def test_several_processes_are_refused_before_they_start(tmp_path):
    """Guards against: the refusal coming from each DDP process's data setup, after the
    processes had started, printed once per process."""
    from lightning_gru.cli import LightningGRUCLI
    from lightning_gru.data import DataConfigError

    args = ["--config", str(RECIPES / "debug.yaml"), *common(tmp_path, "d", False)]
    with pytest.raises(DataConfigError, match="runs in one process, got 2"):
        LightningGRUCLI(args=[*args, "--trainer.devices", "2"], run=False)  # builds, runs nothing


def test_lightnings_checkpoint_names_are_left_to_it(tmp_path, monkeypatch):
    """`best`, `last`, `hpc`, a model registry (any case, with litmodels) and URLs are
    Lightning's to read; a local path that only starts like one is checked as a file."""
    monkeypatch.chdir(tmp_path)

    def error(message):
        raise SystemExit(message)

    for name in ("best", "last", "hpc", "s3://bucket/x.ckpt"):
        check_checkpoint_file(error, name)
    with pytest.raises(SystemExit, match="--ckpt_path registryfoo.ckpt: no such file"):
        check_checkpoint_file(error, "registryfoo.ckpt")
    # a registry name is Lightning's where litmodels is installed, else a local path to it
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    for name in ("registry", "REGISTRY:model:v2"):
        check_checkpoint_file(error, name)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SystemExit, match="--ckpt_path registry:model: no such file"):
        check_checkpoint_file(error, "registry:model")


@pytest.mark.parametrize("form", [["--config", "{}"], ["--config={}"], ["-c", "{}"]])
def test_a_recipe_path_that_is_not_here_points_to_the_installed_recipes(
    tmp_path, monkeypatch, capsys, form
):
    """The docs write `--config recipes/...` for a checkout; run elsewhere (an installed
    package), the command names where its recipes are instead of only "File does not exist"."""
    monkeypatch.chdir(tmp_path)
    recipe = "recipes/forecasting/sine-gru.yaml"
    with pytest.raises(SystemExit) as exit_info:
        run_cli(["fit", *(arg.format(recipe) for arg in form), "--trainer.logger", "false"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"--config {recipe}: no such file in {tmp_path}" in err
    assert f"--config {RECIPES / 'forecasting' / 'sine-gru.yaml'}" in err


def test_a_missing_config_that_is_no_recipe_is_left_to_the_parser(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for missing in ("recipes/forecasting/no-such.yaml", "my-recipe.yaml"):
        with pytest.raises(SystemExit):
            run_cli(["fit", "--config", missing])
        err = capsys.readouterr().err
        assert "File does not exist" in err and "installed with lightning-gru" not in err


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--trainer.max_epochs", "abc"], 'Parser key "trainer.max_epochs"'),
        (["--model.init_args.hidden_size", "1.5"], 'Parser key "hidden_size"'),
        (["--trainer.foo", "3"], "unrecognized arguments: --trainer.foo 3"),
        # an abbreviation is refused, not taken for --trainer.max_epochs
        (["--trainer.max_epoch", "3"], "unrecognized arguments: --trainer.max_epoch 3"),
    ],
)
def test_a_refused_option_is_reported_under_a_one_line_usage(capsys, option, message):
    """jsonargparse prints the subcommand's usage, every option of it (about 80 lines), above
    the message; the command prints one."""
    args = ["fit", "--config", str(RECIPES / "debug.yaml"), "--trainer.logger", "false", *option]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: lightning-gru fit [options]\ntip: For details")
    assert message in err and len(err.splitlines()) < 15


@pytest.mark.parametrize("subcommand", ["fit", "test"])
def test_a_checkpoint_path_that_is_no_file_is_refused_before_a_wandb_run(
    tmp_path, monkeypatch, capsys, subcommand
):
    """Lightning says so only inside `fit` or `test`, once the W&B run has started: a failed
    run without a config would be left to sync. So are the data's errors, which the data
    modules meet in `setup`: the command sets the data up before Lightning starts the run."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    recipe = ["--config", str(RECIPES / "forecasting" / "sine-gru.yaml")]
    with pytest.raises(SystemExit) as exit_info:
        run_cli([subcommand, *recipe, "--ckpt_path", "missing.ckpt"])
    assert exit_info.value.code == 2
    expected = (
        f"--ckpt_path missing.ckpt: no such file (relative to the working directory {tmp_path})"
    )
    assert expected in capsys.readouterr().err
    if subcommand == "fit":  # (test needs a checkpoint first)
        with pytest.raises(FileNotFoundError, match="data_file 'series.csv' does not exist"):
            run_cli([subcommand, *recipe, "--data.init_args.data_file", "series.csv"])
        # a file that exists and is read in `setup`: set up before Lightning starts the run
        (tmp_path / "bad.csv").write_text("1.0\nabc\n2.0\n")
        with pytest.raises(DataFileError, match="bad.csv: line 2: 'abc' is not a number"):
            run_cli([subcommand, *recipe, "--data.init_args.data_file", "bad.csv"])
    assert not list(tmp_path.rglob("offline-run-*"))
