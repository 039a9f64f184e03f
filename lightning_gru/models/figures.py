"""Figures and tables of the experiments: drawn with matplotlib, saved as PNG next to the
checkpoints and logged to every logger that takes them (W&B as ``wandb.Image``/``wandb.Table``,
TensorBoard as figure/text); CSV and other loggers get the files only.

The plotting functions take plain tensors or lists and return a ``matplotlib.figure.Figure``
built without ``pyplot``, so they hold no global state and need no display.
"""

from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only
from matplotlib.figure import Figure

__all__ = [
    "figure_dir",
    "log_figure",
    "log_table",
    "plot_confusion_matrix",
    "plot_forecast",
    "plot_history",
]


def figure_dir(trainer: L.Trainer) -> Path:
    """Where figures go: the checkpoint folder, else the log folder, else ``default_root_dir``."""
    callback = trainer.checkpoint_callback
    folder = getattr(callback, "dirpath", None) or trainer.log_dir or trainer.default_root_dir
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


@rank_zero_only
def log_figure(trainer: L.Trainer, key: str, fig: Figure) -> Path:
    """Save ``fig`` as ``<figure_dir>/<key>.png`` and log it under ``key``; returns the path."""
    path = figure_dir(trainer) / f"{key}.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    for logger in trainer.loggers:
        if hasattr(logger, "log_image"):  # WandbLogger: wraps each figure in wandb.Image
            logger.log_image(key=key, images=[fig], step=trainer.global_step)
        elif hasattr(getattr(logger, "experiment", None), "add_figure"):  # TensorBoard
            logger.experiment.add_figure(key, fig, global_step=trainer.global_step)
    return path


@rank_zero_only
def log_table(
    trainer: L.Trainer, key: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
) -> Path:
    """Save a table as ``<figure_dir>/<key>.md`` (Markdown) and log it; returns the path."""
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    path = figure_dir(trainer) / f"{key}.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for logger in trainer.loggers:
        if hasattr(logger, "log_table"):  # WandbLogger: a wandb.Table
            logger.log_table(key=key, columns=list(columns), data=[list(r) for r in rows])
        elif hasattr(getattr(logger, "experiment", None), "add_text"):  # TensorBoard
            logger.experiment.add_text(key, "\n".join(lines), global_step=trainer.global_step)
    return path


def plot_history(history: dict[str, list[tuple[int, float]]], title: str = "") -> Figure:
    """Learning curves: one panel per metric name, train and val in the same panel.

    Args:
        history: ``{"train_loss": [(epoch, value), ...], "val_loss": [...], "val_acc": ...}``;
            keys are ``f"{stage}_{name}"``.
        title: the figure title.

    >>> fig = plot_history({"train_loss": [(0, 1.0), (1, 0.5)], "val_loss": [(0, 1.2)]})
    >>> [ax.get_title() for ax in fig.axes]
    ['loss']
    """
    names = sorted({key.split("_", 1)[1] for key in history if "_" in key})
    fig = Figure(figsize=(5 * max(len(names), 1), 3.5))
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        for stage in ("train", "val"):
            points = history.get(f"{stage}_{name}", [])
            if points:
                epochs, values = zip(*points, strict=True)
                ax.plot(epochs, values, marker="." if len(points) < 30 else None, label=stage)
        ax.set(title=name, xlabel="epoch")
        if name in ("loss", "ppl") or name.endswith("mse"):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return fig


def plot_forecast(
    context: torch.Tensor, target: torch.Tensor, prediction: torch.Tensor, title: str = ""
) -> Figure:
    """The roll-out against the truth, after the end of the series the model has read.

    Args:
        context: ``(N_context,)`` the series read before the roll-out.
        target: ``(N_test,)`` the true continuation; ``target[0]`` starts the roll-out.
        prediction: ``(N_test - 1,)`` the roll-out, predicting ``target[1:]``.
        title: the figure title.

    >>> fig = plot_forecast(torch.zeros(5), torch.ones(4), torch.ones(3))
    >>> [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    ['context (read)', 'truth', 'roll-out']
    """
    context, target, prediction = (
        t.detach().cpu().flatten().double().numpy() for t in (context, target, prediction)
    )
    n = len(context)
    fig = Figure(figsize=(10, 3.5))
    ax = fig.add_subplot()
    ax.plot(range(n), context, color="0.6", lw=1, label="context (read)")
    ax.plot(range(n, n + len(target)), target, color="k", lw=1, label="truth")
    ax.plot(range(n + 1, n + 1 + len(prediction)), prediction, color="C3", lw=1.5, label="roll-out")
    ax.axvline(n, color="0.3", ls=":", lw=1)
    ax.set(xlabel="t", title=title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(alpha=0.3)
    return fig


def plot_confusion_matrix(
    matrix: torch.Tensor, class_names: Sequence[str], title: str = ""
) -> Figure:
    """A confusion matrix: rows are the true classes, columns the predicted ones.

    >>> fig = plot_confusion_matrix(torch.tensor([[5, 1], [2, 7]]), ["neg", "pos"])
    >>> fig.axes[0].get_xlabel()
    'predicted'
    """
    matrix = matrix.detach().cpu().numpy()
    fig = Figure(figsize=(1.2 * len(class_names) + 2, 1.2 * len(class_names) + 1.5))
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax)
    ticks = range(len(class_names))
    ax.set(xticks=ticks, yticks=ticks, xticklabels=class_names, yticklabels=class_names)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    threshold = matrix.max() / 2
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            color = "white" if matrix[i, j] > threshold else "black"
            ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", color=color)
    return fig
