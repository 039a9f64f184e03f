"""The ``lightning-gru`` command: one LightningCLI for the three experiments.

Pick the experiment with ``--model``/``--data`` (a class name or a ``class_path``), or with a
recipe that sets both::

    lightning-gru fit --config recipes/forecasting/sine-gru.yaml
    lightning-gru test --config recipes/forecasting/sine-gru.yaml --ckpt_path best
    lightning-gru fit --model Forecaster --data SineWaveDataModule --trainer.max_epochs 5
    lightning-gru fit --config recipes/sentiment/imdb-gru.yaml --print_config

Subcommands ``fit``, ``validate``, ``test`` and ``predict``; ``--config`` repeats and later files
override earlier ones. Besides the model, data and trainer the command adds:

- ``checkpoint``: a ``ModelCheckpoint`` keeping ``best.ckpt`` (lowest ``val_loss``; give
  ``checkpoint.dirpath`` for a fixed folder), and ``last_checkpoint``, one writing ``last.ckpt``
  in the same folder after every epoch, so ``--ckpt_path last`` resumes from the latest epoch
  (both are ``WholeEpochCheckpoint``: nothing of an epoch that ``max_time`` cut short);
- ``random_states``: :class:`~lightning_gru.models.RandomStates`, the random generators' states
  in every checkpoint, so that a resumed run is the uninterrupted one, bit for bit;
- ``learning_curves``: :class:`~lightning_gru.models.LearningCurves`, the loss (accuracy,
  perplexity) curves as ``learning_curves.png`` next to the checkpoints and in W&B;
- ``prediction_writer``: :class:`~lightning_gru.models.PredictionWriter`, ``predict`` output as
  JSON lines, printed and written to ``predictions.jsonl``.

The vocabulary size (and the class names) flow from the data module into the model through
``link_arguments`` when both are built; a model without such an argument (``Forecaster``) is
left alone. The resolved configuration is written as ``config.yaml`` in the log folder (next
to the checkpoints when there is no logger) and logged as hyperparameters (the W&B run config).
Runs log to W&B in project ``lightning-gru`` by default; without an API key they are written
offline (an existing ``WANDB_MODE`` wins) and can be uploaded later with ``wandb sync``.
"""

import inspect
import netrc
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
import yaml
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.cli import (
    ArgsType,
    LightningArgumentParser,
    LightningCLI,
    SaveConfigCallback,
)
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException
from torch.optim.lr_scheduler import ReduceLROnPlateau

import lightning_gru.data  # noqa: F401  (makes the data modules known to --data NAME)
import lightning_gru.models  # noqa: F401  (makes the models known to --model NAME)
from lightning_gru import _cli_checks as checks
from lightning_gru.data import (
    DataConfigError,
    DataFileError,
    SourceUnreachableError,
)
from lightning_gru.data._common import check_one_process
from lightning_gru.models import Forecaster, LanguageModel, SentimentClassifier
from lightning_gru.models._common import check_scheduler_validates
from lightning_gru.models.callbacks import (
    LearningCurves,
    PredictionWriter,
    RandomStates,
    WholeEpochCheckpoint,
)

__all__ = ["ArgumentValueError", "LightningGRUCLI", "cli_main", "run_cli"]

WANDB_PROJECT = "lightning-gru"
_SUMMARY = "Sentiment, language-model and forecasting experiments with a fast GRU (LightningCLI)."


class ArgumentValueError(ValueError):
    """A value of the command's configuration that the model, the data module, the Trainer or a
    callback refused when the command built it (``--data.init_args.batch_size 0``), or that
    the model's optimizer or scheduler refused (named first: ``model.optimizer: ...``); the
    message is theirs. The console script prints it in one line (a value of the wrong type,
    which the parser refuses, comes under a one-line usage)."""


class ConfigToLoggers(SaveConfigCallback):
    """Writes the resolved config to the log folder (``config.yaml`` for ``fit``,
    ``config-<stage>.yaml`` otherwise, so ``predict`` does not overwrite the training config)
    and logs it to every logger as the hyperparameter ``config``. Without a logger, whose log
    folder Lightning takes to be the working directory, the file goes next to the checkpoints
    (nowhere when the checkpoint folder is not set)."""

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        stage = getattr(stage, "value", stage)  # Lightning passes a TrainerFn
        if stage != "fit":
            self.config_filename = f"config-{stage}.yaml"
        if not trainer.loggers:
            folder = getattr(trainer.checkpoint_callback, "dirpath", None)
            if folder is None:
                self.save_to_log_dir = False
            else:
                self.config_filename = os.path.join(folder, self.config_filename)
                if stage == "fit":  # after the checkpoints' setup, which warns of a folder
                    self._write_on_fit_start = True  # that holds files, as this one would
                    return
        self._write(trainer, pl_module, stage)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if getattr(self, "_write_on_fit_start", False):
            self._write_on_fit_start = False
            self._write(trainer, pl_module, "fit")

    def _write(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        folder = os.path.dirname(self.config_filename)
        if folder and trainer.is_global_zero:
            os.makedirs(folder, exist_ok=True)
        super().setup(trainer, pl_module, stage)

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        config = yaml.safe_load(self.parser.dump(self.config, skip_unset=False))
        for logger in trainer.loggers:
            logger.log_hyperparams({"config": config})


class ArgumentParser(LightningArgumentParser):
    """Lightning's parser, which on an error prints the message under a one-line usage (a
    subcommand's full usage lists every option: 80 lines above a wrong value's message) and
    takes no abbreviated options (``--trainer.max_epoch 3`` would set ``max_epochs``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def print_usage(self, file: Any = None) -> None:
        usage = self.format_usage()
        if usage.count("\n") > 3:
            usage = f"usage: {self.prog.replace(' [options]', '')} [options]\n"
        self._print_message(usage, file)


class LightningGRUCLI(LightningCLI):
    """LightningCLI with the checkpoint, curve and prediction callbacks and the data links.

    ``run=False`` builds the model, the data module and the Trainer from the arguments (no
    subcommand) and runs nothing, for a script to use them.

    Example:
        >>> cli = LightningGRUCLI(args=["--model", "Forecaster", "--data", "SineWaveDataModule",
        ...     "--model.hidden_size", "8", "--trainer.max_epochs", "3",
        ...     "--trainer.logger", "false"], run=False)
        >>> type(cli.model).__name__, cli.model.hparams.hidden_size, cli.trainer.max_epochs
        ('Forecaster', 8, 3)
        >>> type(cli.datamodule).__name__, [type(c).__name__ for c in cli.trainer.callbacks][:3]
        ('SineWaveDataModule', ['LearningCurves', 'PredictionWriter', 'RandomStates'])
    """

    def __init__(self, args: ArgsType = None, **kwargs: Any) -> None:
        # A class_path dict rather than a `lazy_instance`: deep copies of the model (weight
        # averaging) reach the parser's defaults, and copying a lazy instance creates it, which
        # would start a stray W&B run.
        defaults = {
            "devices": 1,  # the data modules' batch samplers are not rank-aware (no DDP)
            "logger": {
                "class_path": "lightning.pytorch.loggers.WandbLogger",
                "init_args": {"project": WANDB_PROJECT, "save_dir": "runs"},
            },
        }
        kwargs.setdefault("trainer_defaults", defaults)
        kwargs.setdefault("seed_everything_default", 42)
        kwargs.setdefault("save_config_callback", ConfigToLoggers)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("auto_configure_optimizers", False)  # the models take `optimizer`
        kwargs.setdefault("parser_kwargs", {"prog": "lightning-gru", "description": _SUMMARY})
        kwargs.setdefault("parser_class", ArgumentParser)
        if "WANDB_MODE" not in os.environ and not wandb_has_credentials():
            os.environ["WANDB_MODE"] = "offline"
        super().__init__(None, None, args=args, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # best.ckpt: never of an epoch that max_time cut short (WholeEpochCheckpoint)
        parser.add_lightning_class_args(BestCheckpoint, "checkpoint")
        # Lightning's `save_last` writes last.ckpt only in an epoch that also saved a best
        # checkpoint; a second callback writes last.ckpt at the end of every training epoch,
        # which Lightning 2 calls after that epoch's validation, if any (it draws from the
        # random generators that RandomStates saves), so `--ckpt_path last` resumes from the
        # latest epoch exactly, also when validation runs only every few epochs; an epoch cut
        # short by max_time or max_steps is not saved (WholeEpochCheckpoint).
        parser.add_lightning_class_args(WholeEpochCheckpoint, "last_checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val_loss",
                "checkpoint.mode": "min",
                "checkpoint.filename": "best",
                "checkpoint.save_top_k": 1,
                "checkpoint.save_last": False,
                # a new fit into the same folder replaces best.ckpt (not best-v1.ckpt beside the
                # old run's), so that --ckpt_path best is this run's
                "checkpoint.enable_version_counter": False,
                "last_checkpoint.filename": "last",
                "last_checkpoint.monitor": None,
                "last_checkpoint.save_top_k": 1,
                "last_checkpoint.save_on_train_epoch_end": True,
                "last_checkpoint.enable_version_counter": False,
            }
        )
        parser.link_arguments("checkpoint.dirpath", "last_checkpoint.dirpath")
        parser.add_lightning_class_args(LearningCurves, "learning_curves")
        parser.add_lightning_class_args(PredictionWriter, "prediction_writer")
        parser.add_lightning_class_args(RandomStates, "random_states")
        # The vocabulary size comes from `data.encode`'s data module rather than from
        # `data.vocab_size`, which builds the vocabulary as soon as it is read: jsonargparse
        # skips a link whose source attribute is missing (the sine data has no `encode`), and
        # `_vocab_size` first restores the vocabulary of a checkpoint, so that predicting from
        # one needs no training data.
        parser.link_arguments(
            "data.encode", "model.init_args.vocab_size", self._vocab_size, apply_on="instantiate"
        )
        parser.link_arguments(
            "data.class_names", "model.init_args.class_names", list, apply_on="instantiate"
        )

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        """Parse, then resolve ``--ckpt_path best|last`` to the files in ``checkpoint.dirpath``
        before Lightning reads the model's hyperparameters from the checkpoint (it does so for
        a path to an existing file only), and note the model options given on the command
        line, which ``before_instantiate_classes`` puts back over the checkpoint's."""
        argv = sys.argv[1:] if args is None else args
        if isinstance(argv, list | tuple):  # (not a dict or Namespace of arguments)
            checks.check_recipe_paths(parser.error, [str(arg) for arg in argv])
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        if subcommand is None:
            return
        config = self.config[subcommand]
        filename = config.get("checkpoint.filename")
        if config.get("ckpt_path") == "best" and filename not in (None, "best"):
            parser.error(
                f"--ckpt_path best names best.ckpt, which checkpoint.filename {filename!r} does "
                "not write (an older fit's may be there): give the path of the checkpoint"
            )
        path = checks.named_checkpoint(config)
        if path is not None and path.is_file():
            config.ckpt_path = str(path)
        checks.check_checkpoint_file(parser.error, config.get("ckpt_path"))  # read next
        self._check_checkpoint_arguments(config)
        given = checks.model_options_given(sys.argv[1:] if args is None else args)
        self._model_options = {key: config[key] for key in given if key in config}

    def _parse_ckpt_path(self) -> None:
        """Lightning's, which reads the model's class and arguments from the checkpoint, and
        also for a checkpoint saved from Python (``Trainer.fit`` in a script), whose arguments
        come without a class (Lightning would fail on them): they are the configured model's,
        which ``_check_checkpoint_arguments`` has checked."""
        subcommand = self.config.get("subcommand")
        arguments = self._arguments_saved_from_python()
        class_path = self.config[subcommand].get("model.class_path") if subcommand else None
        if arguments is None or class_path is None:
            super()._parse_ckpt_path()
            return
        model = {"class_path": class_path, "init_args": arguments}
        self.config = self.parser.parse_object({subcommand: {"model": model}}, self.config)

    def _arguments_saved_from_python(self) -> dict[str, Any] | None:
        """The model arguments of a ``--ckpt_path`` saved from Python: without the class that
        the command's checkpoints name (None for those, and without a checkpoint)."""
        arguments = self._checkpoint_state("hyper_parameters")
        if not arguments or "_class_path" in arguments:
            return None
        return {k: v for k, v in arguments.items() if k != "_instantiator"}

    def _check_checkpoint_arguments(self, config: Any) -> None:
        """Refuse a checkpoint saved from Python (its model arguments, without the class that
        the command's checkpoints name) whose arguments the configured model does not take:
        Lightning would stop on them with a dump of the parser's attempts."""
        arguments = self._arguments_saved_from_python()
        model_class = checks.import_class(config.get("model.class_path"))
        if arguments is None or model_class is None:
            return
        parameters = inspect.signature(model_class).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            return
        unknown = sorted(set(arguments) - set(parameters))
        if unknown:
            self.parser.error(
                f"--ckpt_path {config.ckpt_path} holds the arguments of another model: "
                f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} no argument of "
                f"{model_class.__name__}; pass --model with the class it was saved from"
            )

    def before_instantiate_classes(self) -> None:
        """Put the model options of the command line back over the checkpoint's
        hyperparameters, and refuse what would run to no purpose or fail deep inside: untrained
        weights evaluated, a data module without the split, a model of another experiment, a
        typed option that would not be used (``lightning_gru._cli_checks``)."""
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else self.config  # None: run=False
        typed = getattr(self, "_model_options", {})
        for key, value in typed.items():
            config[key] = value
        error = self.parser.error
        checks.check_typed_options(error, subcommand, config, list(typed))
        checks.check_ckpt_path(error, subcommand, config)
        checks.check_checkpointing(error, config)
        saved = {
            "model": (self._checkpoint_state("hyper_parameters") or {}).get("_class_path"),
            "data": (self._checkpoint_state("datamodule_hyper_parameters") or {}).get(
                "_class_path"
            ),
        }
        checks.check_experiment(error, subcommand, config, saved)

    def _set_seed(self) -> None:
        """Lightning's, with a seed that NumPy refuses reported in one line."""
        try:
            super()._set_seed()
        except ValueError as err:  # out of NumPy's bounds
            raise ArgumentValueError(f"seed_everything: {err}") from err

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """Lightning's, with a value that the Trainer's constructor refuses (a ValueError)
        reported in one line."""
        try:
            return super().instantiate_trainer(**kwargs)
        except ValueError as err:
            raise ArgumentValueError(f"trainer: {err}") from err

    def _run_subcommand(self, subcommand: str) -> None:
        """Lightning's, with a ValueError that the Trainer raises itself on starting (a
        ``--ckpt_path hpc`` it finds no file for, a ``val_check_interval`` longer than an
        epoch), or that the model's checks raise then, reported in one line.

        The package's data modules are set up first: Lightning starts the loggers' runs before
        it sets the data up, and a data error met there (a CSV value that is no number, a
        predict file with a blank line, no prefixes) would leave a failed W&B run without a
        config, to sync. (Their ``setup`` does its work once: Lightning's call finds it done.)"""
        if self._package_data_module():
            self.datamodule.trainer = self.trainer  # (what it checks depends on the trainer's)
            self.datamodule.setup(subcommand)
        try:
            super()._run_subcommand(subcommand)
        except ValueError as err:
            if not _a_configuration_check(err):
                raise
            raise ArgumentValueError(f"{subcommand}: {str(err).strip()}") from err

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        if self._package_data_module():
            check_one_process(self.datamodule, self.trainer)  # before DDP starts its processes
        self._check_checkpoint_fits()
        for logger in self.trainer.loggers:  # wandb warns about a save_dir that does not exist
            if isinstance(logger, WandbLogger) and logger.save_dir:
                Path(logger.save_dir).mkdir(parents=True, exist_ok=True)
        if self.subcommand == "fit":
            _check_optimizer(self.model, self.trainer)

    def _package_data_module(self) -> bool:
        """Whether the data module is one of this package's (whose checks and ``setup`` the
        command knows; a data module of the user's is left to Lightning)."""
        return type(self.datamodule).__module__.startswith("lightning_gru.")

    def _check_checkpoint_fits(self) -> None:
        """Refuse a model whose weights have other names or shapes than the checkpoint's (a
        typed ``--model.hidden_size`` over the checkpoint's): Lightning would fail to load
        them with a traceback, after building everything."""
        saved = self._checkpoint_state("state_dict")
        mismatch = checks.checkpoint_mismatch(saved, self.model) if saved else None
        if mismatch is None:
            return
        typed = ", ".join(f"--{key}" for key in getattr(self, "_model_options", {}))
        remedy = (
            f"leave out {typed}, which the checkpoint's arguments fit"
            if typed
            else "give the configuration it was trained with"
        )
        raise ArgumentValueError(
            f"--ckpt_path {self._checkpoint[0]} does not fit the model configured ({mismatch}): "
            f"{remedy}"
        )

    def _vocab_size(self, encode: Any) -> int:
        """The vocabulary size of the data module of ``encode``; when the command starts from a
        checkpoint file, that of the vocabulary saved in it."""
        data = encode.__self__
        state = self._checkpoint_state(type(data).__qualname__)
        if state:
            data.load_state_dict(state)
        return data.vocab_size

    def _checkpoint_state(self, key: str) -> Any:
        """``key`` of the checkpoint file that ``--ckpt_path`` names (read once), or None."""
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not ckpt_path or not Path(ckpt_path).is_file():
            return None
        if getattr(self, "_checkpoint", (None,))[0] != ckpt_path:
            self._checkpoint = (
                ckpt_path,
                torch.load(ckpt_path, map_location="cpu", weights_only=True),
            )
        return self._checkpoint[1].get(key)


class BestCheckpoint(WholeEpochCheckpoint):
    """The class of the command's ``checkpoint``: a ``WholeEpochCheckpoint`` whose state (the
    best score and file) goes into checkpoints under the key of a plain ``ModelCheckpoint``, as
    it did when ``checkpoint`` was one, so that a fit written then resumes with its best."""

    @property
    def state_key(self) -> str:
        key = super().state_key
        return "ModelCheckpoint" + key.removeprefix(type(self).__qualname__)


def _check_optimizer(model: LightningModule, trainer: Trainer | None = None) -> None:
    """Build the ``optimizer`` and ``lr_scheduler`` of this package's models (arguments of
    theirs) and take one step of the scheduler, so that a value they refuse (a negative
    learning rate, a ``StepLR`` of step size 0, a ``ReduceLROnPlateau`` without validation)
    ends the command before the fit starts, in one line rather than a traceback from inside
    it. Other models are left alone: what their attributes of these names are is theirs to
    say."""
    if not isinstance(model, Forecaster | LanguageModel | SentimentClassifier):
        return
    optimizer, scheduler = model.optimizer, model.lr_scheduler
    name = "optimizer"
    try:
        built = optimizer(model.parameters())
        if callable(scheduler):
            name = "lr_scheduler"
            built = scheduler(built)
            check_scheduler_validates(built, trainer)
            if not isinstance(built, ReduceLROnPlateau):  # it steps on a metric
                with warnings.catch_warnings():  # of a step before the optimizer's
                    warnings.simplefilter("ignore")
                    try:
                        built.step()
                    except ZeroDivisionError as err:  # StepLR(step_size=0)
                        raise ValueError(f"{type(built).__name__}'s first step: {err}") from err
    except ValueError as err:
        raise ArgumentValueError(f"model.{name}: {err}") from err


def _a_configuration_check(err: BaseException) -> bool:
    """Whether ``err`` was raised in the code of Lightning's Trainer or loops (its checks of
    its arguments) or in the checks that this package's models run as a stage starts (a
    ``ReduceLROnPlateau`` with no validation data), not in other code of a model or data
    module, whose error is a bug to debug with its traceback."""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "") if tb is not None else ""
    checks = (
        "lightning.pytorch.trainer.",
        "lightning.pytorch.loops.",
        "lightning_gru.models._common",
    )
    return module.startswith(checks)


def wandb_has_credentials() -> bool:
    """Whether W&B can log in without asking: ``WANDB_API_KEY`` or a ``~/.netrc`` entry for
    the W&B host (``WANDB_BASE_URL``, by default ``api.wandb.ai``)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    path = os.environ.get("NETRC", Path.home() / ".netrc")
    try:
        return netrc.netrc(path).authenticators(host or "") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def _finish_wandb(exit_code: int) -> None:
    """Close the W&B run of this command, so the next command in this process starts its own."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=exit_code)


def _exit_status(err: BaseException) -> int:
    """The status the interpreter exits with when ``err`` ends it."""
    if not isinstance(err, SystemExit):
        return 1
    if err.code is None:
        return 0
    return err.code if isinstance(err.code, int) else 1  # a message: printed, status 1


def run_cli(args: ArgsType = None) -> LightningGRUCLI:
    """Run the command with ``args`` (a list as on the command line; ``None`` reads
    ``sys.argv``) and return the CLI, whose ``trainer``, ``model`` and ``datamodule`` tests can
    inspect. W&B goes offline unless it has credentials or ``WANDB_MODE`` is set.

    Example:
        >>> import os, shutil, tempfile
        >>> from lightning_gru.recipes import recipes_dir
        >>> folder = tempfile.mkdtemp()  # the debug recipe for one epoch, written here:
        >>> cli = run_cli(["fit", "--config", str(recipes_dir() / "debug.yaml"),
        ...     "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
        ...     "--trainer.logger.save_dir", folder, "--checkpoint.dirpath", folder])
        >>> cli.trainer.current_epoch, cli.trainer.global_step, sorted(os.listdir(folder))
        (1, 3, ['best.ckpt', 'last.ckpt', 'learning_curves.png', 'version_0'])
        >>> shutil.rmtree(folder)
        >>> run_cli(["fit", "--model", "Forecaster", "--data", "SineWaveDataModule",
        ...     "--data.batch_size", "0", "--trainer.logger", "false"])  # a value refused
        Traceback (most recent call last):
            ...
        lightning_gru.cli.ArgumentValueError: batch_size must be >= 1, got 0
    """
    try:
        with warnings.catch_warnings():
            if args is not None:  # a script's own sys.argv is not the command's
                warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
            cli = LightningGRUCLI(args=args)
    except BaseException as err:
        if isinstance(err, SIGTERMException) and not err.code:
            # Lightning ends a fit on SIGTERM with a SystemExit without a code, status 0, which
            # would tell a shell or a scheduler that the run finished: 128 + 15, as a shell says
            _finish_wandb(exit_code=128 + signal.SIGTERM)
            raise SystemExit(128 + signal.SIGTERM) from err
        _finish_wandb(exit_code=_exit_status(err))
        cause = err.__cause__
        wrapped = isinstance(err, ValueError) and not isinstance(err, ArgumentValueError)
        if wrapped and isinstance(cause, (OSError, ValueError)):
            # an error of a class that jsonargparse built (a model or data module refusing an
            # argument; a data module's file missing, unreadable or unreachable while its
            # vocabulary is linked to the model), wrapped in a ValueError that repeats the
            # arguments: the original says what to do
            if type(cause) is ValueError:
                raise ArgumentValueError(str(cause)) from cause
            raise cause from None
        raise
    _finish_wandb(exit_code=0)
    return cli


def cli_main(args: ArgsType = None) -> None:
    """The ``lightning-gru`` console script (and ``python -m lightning_gru``). A data source
    that cannot be reached, a missing file, a data file that cannot be used, data too short for
    the batches or nothing to predict, or an argument value that a class refuses ends it with
    that one message, not a traceback.

    Example:
        >>> cli_main(["fit", "--model", "Forecaster", "--data", "SineWaveDataModule",
        ...     "--data.batch_size", "0", "--trainer.logger", "false"])
        Traceback (most recent call last):
            ...
        SystemExit: lightning-gru: error: batch_size must be >= 1, got 0
    """
    try:
        run_cli(args)
    except (
        SourceUnreachableError,
        FileNotFoundError,
        DataFileError,
        DataConfigError,
        ArgumentValueError,
        MisconfigurationException,  # the Trainer's refusal of an argument
    ) as err:
        sys.exit(f"lightning-gru: error: {err}")


if __name__ == "__main__":
    cli_main()
