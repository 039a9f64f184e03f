"""The ``lightning-gru`` command's checks of its configuration before it builds anything.

Each refuses, through ``error`` (the parser's, which prints the message and exits with status
2), a configuration that Lightning would run to no purpose (untrained weights evaluated, a
best checkpoint that holds the latest), or end with a traceback from deep inside a fit.
"""

import importlib
import importlib.util
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import torch
from lightning.pytorch import LightningDataModule

from lightning_gru.data import IMDbDataModule, SineWaveDataModule, TimeMachineDataModule
from lightning_gru.data._common import relative_to_working_directory
from lightning_gru.models import Forecaster, LanguageModel, SentimentClassifier

Error = Callable[[str], NoReturn]

_DATA_MODULE_OF = {
    Forecaster: SineWaveDataModule,
    LanguageModel: TimeMachineDataModule,
    SentimentClassifier: IMDbDataModule,
}


def check_typed_options(error: Error, subcommand: str | None, config: Any, typed: list[str]):
    """Refuse the ``--model.*`` options (config keys ``typed``) that would not be used: those
    the data module links (the vocabulary size, the class names), and the optimizer and
    scheduler of a resumed fit."""
    names = {key: key.split(".")[2] for key in typed}  # model.init_args.<name>...
    linked = [key for key, name in names.items() if name in ("vocab_size", "class_names")]
    if linked:  # the link would replace the value, silently
        error(
            f"--{linked[0]}: the data module gives it (its vocabulary, or the checkpoint's), "
            "not the command line"
        )
    restored = [key for key, name in names.items() if name in ("optimizer", "lr_scheduler")]
    ckpt_path = config.get("ckpt_path")
    if subcommand == "fit" and ckpt_path and restored:
        error(
            f"--{restored[0]} with --ckpt_path {ckpt_path}: a resumed fit restores the "
            "optimizer and the learning-rate scheduler from the checkpoint, their settings "
            "included, so the value would not be used; start a new fit to change them"
        )


def check_ckpt_path(error: Error, subcommand: str | None, config: Any) -> None:
    """Refuse to validate, test or predict without a checkpoint, and ``--ckpt_path best`` or
    ``last`` where there is no such file: Lightning would evaluate untrained weights (with a
    warning), print numbers of no meaning and overwrite a trained model's predictions."""
    evaluating = subcommand not in ("fit", None)
    ckpt_path, dirpath = config.get("ckpt_path"), config.get("checkpoint.dirpath")
    path = named_checkpoint(config)  # still a name here: the parser found no file
    if path is not None:
        if evaluating or ckpt_path == "best":
            written = "when `fit` validates" if ckpt_path == "best" else "after each epoch"
            error(
                f"--ckpt_path {ckpt_path}: there is no {path} (`fit` writes it {written}); "
                "run `fit` first or give the path of a checkpoint"
            )
    elif ckpt_path in ("best", "last") and (evaluating or ckpt_path == "best"):
        # Lightning would look for them in a folder of its choosing
        error(
            f"--ckpt_path {ckpt_path} names the file in checkpoint.dirpath, which is not set: "
            "set --checkpoint.dirpath (the recipes do) or give the path of a checkpoint"
        )
    elif evaluating and ckpt_path is None:
        error(
            f"`{subcommand}` needs the weights of a trained model: pass --ckpt_path with a "
            f"checkpoint of `fit` (a path, or best or last for the files in "
            f"checkpoint.dirpath{f' {dirpath}' if dirpath else ''})"
        )


def check_checkpointing(error: Error, config: Any) -> None:
    """Refuse Trainer and checkpoint options that would lose the checkpoints the command
    promises (best.ckpt the best, last.ckpt of whole epochs), or that Lightning's loops would
    divide by."""
    if config.get("trainer.enable_checkpointing") is False:
        error(
            "trainer.enable_checkpointing false: the command's checkpoint callbacks write "
            "best.ckpt and last.ckpt; to save neither, pass --checkpoint.save_top_k 0 "
            "--last_checkpoint.save_top_k 0"
        )
    top_k, filename = config.get("checkpoint.save_top_k"), config.get("checkpoint.filename")
    if top_k not in (0, 1) and "{" not in str(filename):
        error(
            f"checkpoint.save_top_k {top_k}: every checkpoint it keeps would be written to "
            f"the one file {filename}.ckpt, which would end up holding the latest, not the "
            "best; keep 1, or give checkpoint.filename a pattern such as "
            "'{epoch}-{val_loss:.4f}' (--ckpt_path best then needs a path)"
        )
    for option in ("check_val_every_n_epoch", "accumulate_grad_batches"):
        value = config.get(f"trainer.{option}")
        if value is not None and value < 1:
            error(f"trainer.{option} must be at least 1, got {value}")
    for option in ("every_n_train_steps", "train_time_interval"):
        if config.get(f"last_checkpoint.{option}"):
            error(
                f"last_checkpoint.{option}: last.ckpt is saved at the end of whole epochs "
                "only, so that a resumed fit is the uninterrupted one (the data loaders "
                "cannot resume from the middle of an epoch)"
            )


def check_experiment(
    error: Error, subcommand: str | None, config: Any, trained: dict[str, Any]
) -> None:
    """Refuse a model and a data module of two experiments, and ``test`` on data without a
    test split: the model would meet batches of another shape and fail inside its forward.
    ``trained``: the class paths of the checkpoint's model and data module (``model``,
    ``data``), if any; Lightning takes the model's class from it."""
    data_class = import_class(config.get("data.class_path"))
    if subcommand == "test" and not has_test_split(data_class):
        error(f"{config.data.class_path} has no test split; `validate` evaluates its held-out text")
    trained_on = trained.get("data")
    if other_experiment(import_class(trained_on), data_class):
        model = str(trained.get("model") or "").rpartition(".")[2] or "model"
        error(
            f"--ckpt_path {config.ckpt_path} holds a {model} trained on {trained_on}, which "
            f"cannot read the batches of {config.data.class_path}: give the configuration it "
            "was trained with (its config.yaml, in the run's log folder or beside its "
            "checkpoints)"
        )
    model_class = import_class(config.get("model.class_path"))
    reads = data_module_of(model_class)
    if reads is not None and other_experiment(reads, data_class):
        error(
            f"{model_class.__name__} reads the batches of {reads.__name__}, not those of "
            f"{data_class.__name__}: pass --data {reads.__name__}, or --model with the model "
            f"of {data_class.__name__}'s experiment"
        )


def checkpoint_mismatch(saved: dict[str, torch.Tensor], model: torch.nn.Module) -> str | None:
    """Where the weights of ``model`` differ from a checkpoint's ``state_dict`` in names or
    shapes (``"name: (8,) in the checkpoint, (16,) in the model"``), or None if they fit."""
    built = model.state_dict()
    strict = getattr(model, "strict_loading", True)  # else missing names are let be
    names = saved.keys() | built.keys() if strict else saved.keys() & built.keys()
    differ = sorted(
        name
        for name in names
        if name not in saved or name not in built or saved[name].shape != built[name].shape
    )
    if not differ:
        return None
    name = differ[0]
    shapes = [tuple(s[name].shape) if name in s else "no such weight" for s in (saved, built)]
    more = f", and {len(differ) - 1} more" if len(differ) > 1 else ""
    return f"{name}: {shapes[0]} in the checkpoint, {shapes[1]} in the model{more}"


def named_checkpoint(config: Any) -> Path | None:
    """``<checkpoint.dirpath>/<best|last>.ckpt`` where ``--ckpt_path`` names one and the
    folder is set, else None."""
    ckpt_path, dirpath = config.get("ckpt_path"), config.get("checkpoint.dirpath")
    if ckpt_path in ("best", "last") and dirpath:
        return Path(dirpath).expanduser() / f"{ckpt_path}.ckpt"  # as ModelCheckpoint expands it
    return None


# a model registry path, as Lightning reads one (``registry``, ``registry:<name>``) where
# ``litmodels`` is installed (without it, Lightning reads the name as a local path)
_REGISTRY = re.compile(r"^registry(:.*|$)", re.IGNORECASE)


def check_checkpoint_file(error: Error, ckpt_path: Any) -> None:
    """Refuse a local ``--ckpt_path`` that is missing, a folder or no file ``torch.save`` wrote
    (a zip archive, or a pickle in torch's legacy format), rather than fail in torch's loader
    with a traceback, or in Lightning's once a W&B run has started (a failed run, left to
    sync)."""
    path = Path(str(ckpt_path)).expanduser() if ckpt_path else None
    if path is None:
        return
    if not path.exists():
        name = str(ckpt_path)
        registry = _REGISTRY.match(name) and importlib.util.find_spec("litmodels") is not None
        if name in ("best", "last", "hpc") or registry or "://" in name:
            return  # Lightning's names and remote paths: its own messages
        error(f"--ckpt_path {ckpt_path}: no such file{relative_to_working_directory(path)}")
    if path.is_dir():
        error(f"--ckpt_path {ckpt_path} is a folder; give the path of a checkpoint file")
    with open(path, "rb") as f:
        legacy = f.read(1) == b"\x80"  # a pickle's protocol opcode
    if not legacy and not zipfile.is_zipfile(path):
        error(
            f"--ckpt_path {ckpt_path} is not a checkpoint (torch.save writes a zip archive); "
            "a file cut short, or another kind of file?"
        )


def check_recipe_paths(error: Error, args: list[str]) -> None:
    """Refuse a ``--config recipes/...`` that is no file here, as the docs write recipes for a
    checkout, where the package's own recipes are: the message gives their installed path
    (jsonargparse would say only that the file does not exist, after the whole usage)."""
    from lightning_gru.recipes import recipes_dir

    for i, arg in enumerate(args):
        value = args[i + 1] if arg in ("--config", "-c") and i + 1 < len(args) else None
        if arg.startswith("--config="):
            value = arg.partition("=")[2]
        path = Path(value) if value else None
        if path is None or path.exists() or not path.parts or path.parts[0] != "recipes":
            continue
        try:
            installed = recipes_dir().joinpath(*path.parts[1:])
        except FileNotFoundError:  # no recipes installed either: jsonargparse says it
            return
        if installed.is_file():
            error(
                f"--config {value}: no such file in {Path.cwd()}; the recipes installed with "
                f"lightning-gru are in {recipes_dir()}: --config {installed}"
            )


def model_options_given(args: Any) -> list[str]:
    """The config keys of the ``--model.*`` options in a command line (``model.init_args.X``
    for ``--model.X`` or ``--model.init_args.X``), other than the class and ``help``."""
    if not isinstance(args, list | tuple):
        return []  # a dict or Namespace of arguments: nothing typed over a checkpoint
    keys = []
    for arg in args:
        if not isinstance(arg, str) or not arg.startswith("--model."):
            continue
        name = arg[len("--model.") :].split("=", 1)[0].removeprefix("init_args.")
        if name and name not in ("class_path", "help"):
            keys.append(f"model.init_args.{name}")
    return keys


def other_experiment(trained_on: type | None, data: type | None) -> bool:
    """Whether ``trained_on`` and ``data`` are two of this package's data modules, neither a
    subclass of the other (a model of one cannot read the other's batches). A user's own data
    module is let through: it may well produce the same batches."""
    if any(c is None or not c.__module__.startswith("lightning_gru.") for c in (trained_on, data)):
        return False
    return not (issubclass(trained_on, data) or issubclass(data, trained_on))


def data_module_of(model_class: type | None) -> type | None:
    """The data module whose batches this package's model ``model_class`` reads, or None."""
    found = [
        data
        for model, data in _DATA_MODULE_OF.items()
        if model_class and issubclass(model_class, model)
    ]
    return found[0] if found else None


def import_class(class_path: str | None) -> type | None:
    """The class that ``class_path`` (``package.module.Name``) names, or None."""
    module, _, name = (class_path or "").rpartition(".")
    try:
        found = getattr(importlib.import_module(module), name, None) if module else None
    except ImportError:
        return None
    return found if isinstance(found, type) else None


def has_test_split(data_class: type | None) -> bool:
    """Whether the data module ``data_class`` defines ``test_dataloader`` (True if unknown)."""
    default = LightningDataModule.test_dataloader
    return data_class is None or getattr(data_class, "test_dataloader", default) is not default
