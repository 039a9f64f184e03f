"""What the data modules share: download errors, local files and argument checks."""

from __future__ import annotations

import glob
import numbers
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lightning_gru._checks import check_type

T = TypeVar("T")


class SourceUnreachableError(ConnectionError):
    """The Hugging Face Hub or a URL could not be reached (or offline mode is on)."""


class DataFileError(ValueError):
    """A data file that cannot be used as it is: the message names the file and the problem."""


class DataConfigError(ValueError):
    """The data, as configured, cannot give what a command needs: a text or series too short
    for one batch, nothing to predict. The message says what to change."""


def fetch(source: str, local_hint: str, load: Callable[[], T]) -> T:
    """Run ``load`` (a download through ``datasets``) and explain a failure in one sentence.

    Args:
        source: what is downloaded, for the message (``"'stanfordnlp/imdb' from the Hugging
            Face Hub"``).
        local_hint: how to load local files instead (``"pass data_dir=..."``).
        load: the call that downloads.

    Raises:
        SourceUnreachableError: ``load`` raised an ``OSError`` (no network, offline mode without
            a cached copy, unknown dataset or URL); the original error is chained.
    """
    import datasets.config

    try:
        return load()
    except OSError as err:
        reason = f"{type(err).__name__}: {err}"
        if datasets.config.HF_HUB_OFFLINE:
            message = (
                f"Could not load {source}: offline mode is on (HF_HUB_OFFLINE=1) and the Hugging "
                f"Face cache has no copy ({reason}); {local_hint}."
            )
        else:
            message = (
                f"Could not download {source} ({reason}); {local_hint}, or set HF_HUB_OFFLINE=1 "
                "to use a copy already in the Hugging Face cache."
            )
        raise SourceUnreachableError(message) from err


def load_local_files(
    builder: str, files: list[str], cache_dir: str | None, source: str | None = None
) -> Any:
    """``datasets.load_dataset(builder, data_files=files, split="train")``, the files taken
    literally (``datasets`` reads ``data_files`` as glob patterns, so a name with ``[``, ``*``
    or ``?`` would match nothing or its neighbours), with the errors of :func:`read_local`.

    Args:
        builder: a packaged ``datasets`` builder (``"text"``, ``"parquet"``, ``"csv"``, ...).
        files: paths of existing local files.
        cache_dir: the ``datasets`` cache folder; ``None`` uses ``HF_DATASETS_CACHE``.
        source: what the messages call the files (default: their paths).
    """
    import datasets

    # absolute: datasets joins a relative pattern to the working folder unescaped
    patterns = [glob.escape(os.path.abspath(f)) for f in files]
    return read_local(
        source or ", ".join(files),
        f"{builder} files",
        lambda: datasets.load_dataset(
            builder, data_files=patterns, split="train", cache_dir=cache_dir
        ),
    )


def read_local(source: str, kind: str, load: Callable[[], T]) -> T:
    """Run ``load`` (a ``datasets`` call that reads local files) with an error that names the
    files and the reason when they cannot be read: ``datasets`` reports an empty file, a text
    that is not UTF-8 or a damaged parquet file as "An error occurred while generating the
    dataset", the reason hidden in the chained exceptions.

    Args:
        source: the files, for the message.
        kind: what they should be, for the message (``"parquet files"``).
        load: the call that reads them.

    Raises:
        DataFileError: the files are empty or not readable as ``kind`` (the original error
            chained); a ``DataFileError`` raised inside ``load`` (by a generator that names
            the one file at fault) keeps its message. Errors of the file system (``OSError``)
            pass unchanged.
    """
    try:
        return load()
    except (OSError, DataFileError):
        raise
    except Exception as error:  # noqa: BLE001  (translated below, the original chained)
        root = error
        while not isinstance(root, DataFileError) and (root.__cause__ or root.__context__):
            root = root.__cause__ or root.__context__
        no_rows = type(root).__name__ == "SchemaInferenceError" or isinstance(root, StopIteration)
        if isinstance(root, DataFileError):
            message = str(root)
        elif no_rows or "corresponds to no data" in str(root):  # the last: a CSV of a header
            message = f"{source}: cannot be read as {kind}: no rows (empty file?)"
        else:
            message = f"{source}: cannot be read as {kind}: {type(root).__name__}: {root}"
        raise DataFileError(message) from error


def warn_vocabulary_from_data(datamodule: Any) -> None:
    """Warn, before ``predict`` builds a vocabulary from the training data (no checkpoint gave
    one), that it is the model's only where both came from the same data and settings."""
    if datamodule.vocab is None:
        warnings.warn(
            f"{type(datamodule).__name__} predicts with a vocabulary built from its training "
            "data, no checkpoint having given one: the model's only if it was trained on the "
            "same data with the same settings; pass ckpt_path= to Trainer.predict to use the "
            "checkpoint's",
            stacklevel=2,
        )


def adopt_checkpoint_settings(datamodule: Any, settings: dict[str, Any]) -> bool:
    """Take the settings that a checkpoint's vocabulary was built with (``settings``: attribute
    name to value) over ``datamodule``'s own, in its hyperparameters too (what the next
    checkpoint records), with a warning that names each one that differed: the model was
    trained on that vocabulary, so a value given now (``--data.init_args.token word`` with a
    checkpoint of characters) would not be used. Returns whether any differed (what the data
    module encoded with its own is then to be encoded again)."""
    differing = {
        name: (getattr(datamodule, name), value)
        for name, value in settings.items()
        if getattr(datamodule, name) != value
    }
    if differing:
        described = ", ".join(
            f"{name}={value!r} (not {own!r})" for name, (own, value) in differing.items()
        )
        warnings.warn(
            f"{type(datamodule).__name__} takes the checkpoint's settings, with which its "
            f"vocabulary was built: {described}",
            stacklevel=3,
        )
    for name, value in settings.items():
        setattr(datamodule, name, value)
        if name in datamodule.hparams:
            datamodule.hparams[name] = value
    return bool(differing)


def relative_to_working_directory(path: Path) -> str:
    """For a message about a missing ``path``: where a relative one was looked for."""
    return "" if path.is_absolute() else f" (relative to the working directory {Path.cwd()})"


def check_one_process(datamodule: Any, trainer: Any = None) -> None:
    """A ``DataConfigError`` when ``datamodule``'s Trainer (or ``trainer``, that it is going
    to have) runs several processes (DDP): the package's batch samplers are not rank-aware,
    every process would train on every batch, and Lightning cannot shard them (it fails with a
    traceback per process)."""
    trainer = trainer if trainer is not None else getattr(datamodule, "trainer", None)
    processes = getattr(trainer, "world_size", 1) if trainer is not None else 1
    if processes > 1:
        raise DataConfigError(
            f"{type(datamodule).__name__} runs in one process, got {processes} (devices x "
            "nodes): its batch samplers are not rank-aware, so every process would train on "
            "every batch; run on one device (--trainer.devices 1)"
        )


def existing_file(path: str | Path, what: str) -> Path:
    """``path`` as a ``Path``; ``FileNotFoundError`` naming it and ``what`` if it is no file."""
    path = Path(path).expanduser()
    if not path.is_file():
        where = relative_to_working_directory(path)
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist or is not a file{where}")
    return path


def check_fraction(name: str, value: float, allow_zero: bool = True) -> None:
    """``ValueError`` unless ``value`` is in [0, 1) (or (0, 1) without ``allow_zero``); a
    ``TypeError`` for what is not a number (``"0.1"``)."""
    check_type(name, value, numbers.Real, "a number")
    low_ok = value >= 0.0 if allow_zero else value > 0.0
    if not (low_ok and value < 1.0):
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ValueError(f"{name} must be in {interval}, got {value}")


def check_limit(name: str, value: int) -> None:
    """``ValueError`` unless ``value`` is a positive limit or -1 (no limit)."""
    check_type(name, value, numbers.Integral, "an integer")
    if value == 0 or value < -1:
        raise ValueError(f"{name} must be positive or -1 (no limit), got {value}")


def check_seed(name: str, value: int, maximum: int | None = None) -> None:
    """A ``TypeError`` for a seed that is not an integer (``None`` too: the orders would differ
    from run to run), a ``ValueError`` for one below 0 or above ``maximum``: NumPy refuses them
    only when the first batch is drawn, with "expected non-negative integer"."""
    check_type(name, value, numbers.Integral, "an integer")
    if value < 0 or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and <= {maximum}"
        raise ValueError(f"{name} must be >= 0{upper}, got {value}")
