"""``LearningCurves``, ``PredictionWriter`` and the figure helpers."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace
from unittest.mock import Mock

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.demos.boring_classes import BoringModel
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from PIL import Image
from torch.utils.data import DataLoader

from lightning_gru.data import SineWaveDataModule
from lightning_gru.models import Forecaster, LearningCurves, PredictionWriter
from lightning_gru.models.callbacks import RandomStates, WholeEpochCheckpoint
from lightning_gru.models.figures import (
    figure_dir,
    log_figure,
    log_table,
    plot_confusion_matrix,
    plot_forecast,
    plot_history,
)


def test_learning_curves_record_every_epoch_and_survive_a_checkpoint(tmp_path, make_trainer):
    curves = LearningCurves()
    data = SineWaveDataModule(num_points=200, seq_len=10, batch_size=8)
    make_trainer(max_epochs=3, callbacks=[curves]).fit(Forecaster(hidden_size=4), data)
    assert set(curves.history) == {"train_loss", "val_loss", "val_rollout_mse"}
    assert [epoch for epoch, _ in curves.history["val_loss"]] == [0, 1, 2]
    assert (tmp_path / "learning_curves.png").is_file()

    restored = LearningCurves()
    restored.load_state_dict(curves.state_dict())
    assert restored.history == curves.history


def test_learning_curves_draw_validation_only_in_the_epochs_that_validate(make_trainer):
    """With check_val_every_n_epoch=2 the logged val_* of epoch 1 are still there in epoch 2:
    drawing them again would draw a staircase."""
    curves = LearningCurves()
    data = SineWaveDataModule(num_points=200, seq_len=10, batch_size=8)
    trainer = make_trainer(max_epochs=4, check_val_every_n_epoch=2, callbacks=[curves])
    trainer.fit(Forecaster(hidden_size=4), data)
    assert [epoch for epoch, _ in curves.history["train_loss"]] == [0, 1, 2, 3]
    assert [epoch for epoch, _ in curves.history["val_loss"]] == [1, 3]
    first, second = (value for _, value in curves.history["val_rollout_mse"])
    assert first != second


def test_prediction_writer_writes_json_lines(tmp_path, make_trainer, capsys):
    output = tmp_path / "out" / "predictions.jsonl"
    writer = PredictionWriter(output_file=str(output))
    data = SineWaveDataModule(num_points=100, seq_len=5)
    make_trainer(callbacks=[writer]).predict(Forecaster(hidden_size=4), data)
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(rows) == 1 and set(rows[0]) == {"context", "target", "prediction"}
    assert torch.tensor(rows[0]["prediction"]).shape == (1, 19, 1)  # 20 test points
    printed, status = capsys.readouterr()
    assert f"predictions written to {output}" in status and "written" not in printed
    # the forecast with its context is a long line: printed shortened, written whole
    line = output.read_text().splitlines()[0]
    assert len(line) > writer.PRINT_MAX_CHARS
    assert f"{line[: writer.PRINT_MAX_CHARS]}... ({len(line):,} characters in {output})" in printed


def test_a_prediction_that_fails_leaves_the_earlier_predictions(tmp_path, make_trainer):
    output = tmp_path / "predictions.jsonl"
    output.write_text('{"earlier": 1}\n')

    class FailsAfterItsBatches(Forecaster):
        def on_predict_epoch_end(self):
            raise ValueError("failed after the batches")

    data = SineWaveDataModule(num_points=100, seq_len=5)
    trainer = make_trainer(callbacks=[PredictionWriter(output_file=str(output))])
    with pytest.raises(ValueError, match="failed after the batches"):
        trainer.predict(FailsAfterItsBatches(hidden_size=4), data)
    assert output.read_text() == '{"earlier": 1}\n'
    assert len((tmp_path / "predictions.jsonl.partial").read_text().splitlines()) == 1


def test_sigterm_stops_a_prediction_and_leaves_the_earlier_predictions(tmp_path, make_trainer):
    """Lightning's predict loop, unlike its fit and evaluation loops, ran on to the end."""
    output = tmp_path / "predictions.jsonl"
    output.write_text('{"earlier": 1}\n')

    class Terminated(Callback):
        def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
            trainer._signal_connector.received_sigterm = True  # what Lightning's handler sets

    series = torch.zeros(1, 30, 1)
    batches = DataLoader([{"context": series, "target": series}] * 3, batch_size=None)
    trainer = make_trainer(callbacks=[PredictionWriter(str(output)), Terminated()])
    with pytest.raises(SIGTERMException):
        trainer.predict(Forecaster(hidden_size=4), batches)
    assert output.read_text() == '{"earlier": 1}\n'
    assert len((tmp_path / "predictions.jsonl.partial").read_text().splitlines()) == 1


def test_log_table_writes_markdown(tmp_path, make_trainer):
    path = log_table(make_trainer(), "generated_text", ["prefix", "text"], [["a|b", "c"]])
    assert path == tmp_path / "generated_text.md"
    assert path.read_text().splitlines() == ["| prefix | text |", "| --- | --- |", "| a\\|b | c |"]


def test_plot_history_panels():
    history = {"train_loss": [(0, 2.0), (1, 1.0)], "val_loss": [(0, 2.5)], "val_acc": [(0, 0.5)]}
    fig = plot_history(history, "title")
    assert [ax.get_title() for ax in fig.axes] == ["acc", "loss"]
    assert [line.get_label() for line in fig.axes[1].lines] == ["train", "val"]


def loggers_trainer(tmp_path, dirpath=None) -> SimpleNamespace:
    """A Trainer as the figure helpers read it: a W&B-like and a TensorBoard-like logger (mocks
    of the methods they call) and a CSV-like one, which takes the files only."""
    wandb_like = Mock(spec=["log_image", "log_table"])
    tensorboard_like = SimpleNamespace(experiment=Mock(spec=["add_figure", "add_text"]))
    return SimpleNamespace(
        checkpoint_callback=SimpleNamespace(dirpath=dirpath),
        log_dir=str(tmp_path / "logs"),
        default_root_dir=str(tmp_path),
        loggers=[wandb_like, tensorboard_like, SimpleNamespace(experiment=object())],
        global_step=7,
    )


def test_figures_go_to_the_checkpoint_folder_else_the_log_folder(tmp_path):
    trainer = loggers_trainer(tmp_path, dirpath=str(tmp_path / "ckpt"))
    assert figure_dir(trainer) == tmp_path / "ckpt" and (tmp_path / "ckpt").is_dir()
    trainer.checkpoint_callback = None  # no checkpointing
    assert figure_dir(trainer) == tmp_path / "logs" and (tmp_path / "logs").is_dir()


def test_log_figure_saves_a_png_and_logs_it_to_wandb_and_tensorboard(tmp_path):
    trainer = loggers_trainer(tmp_path, dirpath=str(tmp_path / "ckpt"))
    fig = plot_history({"train_loss": [(0, 1.0)]})
    path = log_figure(trainer, "learning_curves", fig)
    assert path == tmp_path / "ckpt" / "learning_curves.png"
    with Image.open(path) as image:
        assert image.format == "PNG" and image.info["dpi"] == pytest.approx((120, 120), abs=0.1)
    wandb_like, tensorboard_like, _ = trainer.loggers
    wandb_like.log_image.assert_called_once_with(key="learning_curves", images=[fig], step=7)
    tensorboard_like.experiment.add_figure.assert_called_once_with(
        "learning_curves", fig, global_step=7
    )


def test_log_figure_and_log_table_do_nothing_on_other_ranks(tmp_path, monkeypatch):
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    trainer = loggers_trainer(tmp_path, dirpath=str(tmp_path / "ckpt"))
    assert log_figure(trainer, "forecast", plot_history({})) is None
    assert log_table(trainer, "generated_text", ["text"], [["a"]]) is None
    assert not (tmp_path / "ckpt").exists()
    assert trainer.loggers[0].method_calls == trainer.loggers[1].experiment.method_calls == []


def test_log_table_logs_every_row_to_wandb_and_tensorboard(tmp_path):
    trainer = loggers_trainer(tmp_path)
    rows = [("the time", "the time machine"), ("he", "he said")]
    path = log_table(trainer, "generated_text", ("prefix", "text"), rows)
    markdown = (
        "| prefix | text |\n| --- | --- |\n| the time | the time machine |\n| he | he said |\n"
    )
    assert path == tmp_path / "logs" / "generated_text.md"
    assert path.read_text() == markdown
    wandb_like, tensorboard_like, _ = trainer.loggers
    wandb_like.log_table.assert_called_once_with(
        key="generated_text", columns=["prefix", "text"], data=[list(row) for row in rows]
    )
    tensorboard_like.experiment.add_text.assert_called_once_with(
        "generated_text", markdown.rstrip("\n"), global_step=7
    )


def test_plot_history_draws_each_metric_as_its_panel_needs():
    """A metric's name is all after the stage (``val_rollout_mse``: ``rollout_mse``); keys
    without a stage (``epoch``) are no metric; losses, perplexities and MSEs on a log scale."""
    long = [(epoch, 1.0 / (epoch + 1)) for epoch in range(30)]
    history = {
        "epoch": [(0, 0.0)],
        "val_rollout_mse": [(0, 0.5), (1, 0.25)],
        "train_ppl": long,
        "val_ppl": [(9, 0.2), (19, 0.1)],
        "val_acc": [(0, 0.5), (1, 0.75)],
        "train_loss": long,
    }
    fig = plot_history(history, "Forecaster")
    axes = {ax.get_title(): ax for ax in fig.axes}
    assert list(axes) == ["acc", "loss", "ppl", "rollout_mse"]
    assert {name: ax.get_yscale() for name, ax in axes.items()} == {
        "acc": "linear", "loss": "log", "ppl": "log", "rollout_mse": "log",
    }  # fmt: skip
    assert all(ax.get_xlabel() == "epoch" for ax in fig.axes)
    assert [t.get_text() for t in axes["ppl"].get_legend().get_texts()] == ["train", "val"]
    train, val = axes["ppl"].lines
    assert (train.get_marker(), val.get_marker()) == ("None", ".")  # 30 points: a plain line
    assert list(val.get_xdata()) == [9, 19]
    assert [text.get_text() for text in fig.texts] == ["Forecaster"]  # (3.7: no get_suptitle)


def test_plot_forecast_places_the_roll_out_after_the_context():
    """Context at t = 0..4, truth from t = 5 (where the roll-out starts), roll-out from t = 6."""
    fig = plot_forecast(torch.zeros(5), torch.ones(4, 1), torch.full((1, 3, 1), 2.0), "GRU")
    (ax,) = fig.axes
    context, truth, rollout, start = ax.lines
    assert list(context.get_xdata()) == [0, 1, 2, 3, 4]
    assert list(truth.get_xdata()) == [5, 6, 7, 8]
    assert list(rollout.get_xdata()) == [6, 7, 8] and list(rollout.get_ydata()) == [2.0] * 3
    assert list(start.get_xdata()) == [5, 5]  # the dotted line where the roll-out starts
    assert ax.get_title() == "GRU"


def test_plot_confusion_matrix_rows_are_the_true_classes():
    matrix = torch.tensor([[5, 1], [2, 7]])  # true neg: 5 right, 1 called pos
    fig = plot_confusion_matrix(matrix, ["neg", "pos"], "val, accuracy 0.8")
    ax, colorbar = fig.axes
    assert (ax.images[0].get_array() == matrix.numpy()).all()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["neg", "pos"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["neg", "pos"]
    # the count of each cell at (column, row), white where it is above half the maximum
    cells = {(t.get_position(), t.get_text(), t.get_color()) for t in ax.texts}
    assert cells == {
        ((0, 0), "5", "white"), ((1, 0), "1", "black"),
        ((0, 1), "2", "black"), ((1, 1), "7", "white"),
    }  # fmt: skip
    assert (ax.get_ylabel(), ax.get_title()) == ("true", "val, accuracy 0.8")
    assert colorbar.get_label() == "<colorbar>"


class StopAtBatch(L.Callback):
    """Stops the fit after batch ``batch`` of epoch ``epoch``, as ``max_time`` does."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            trainer.should_stop = True


@pytest.mark.parametrize("every", [1, 2])
def test_whole_epoch_checkpoints_skip_an_epoch_cut_short(tmp_path, make_trainer, every):
    """Lightning validates the cut epoch (epoch 3); neither the best checkpoint (every
    validation is a new best here: ``step``, ``max``), saved at the end of the training epoch
    or, validating every other epoch, at the end of validation, nor the latest takes it."""
    one_file = {"enable_version_counter": False}  # as the lightning-gru command sets them
    best = WholeEpochCheckpoint(tmp_path, "best", monitor="step", mode="max", **one_file)
    last = WholeEpochCheckpoint(tmp_path, "last", save_on_train_epoch_end=True, **one_file)
    trainer = make_trainer(
        max_epochs=5,
        limit_train_batches=4,
        check_val_every_n_epoch=every,
        callbacks=[StopAtBatch(3, 1), best, last],
        enable_checkpointing=True,
    )
    trainer.fit(
        Forecaster(hidden_size=4), SineWaveDataModule(num_points=200, seq_len=10, batch_size=2)
    )
    assert trainer.global_step == 14  # stopped inside epoch 3
    expected = {"best": (2, 12) if every == 1 else (1, 8), "last": (2, 12)}
    for name, (epoch, step) in expected.items():
        saved = torch.load(tmp_path / f"{name}.ckpt", weights_only=False)
        assert (saved["epoch"], saved["global_step"]) == (epoch, step)


def test_random_states_restore_pythons_generator():
    callback = RandomStates()
    state = callback.state_dict()
    first = random.random()
    callback.load_state_dict(state)
    assert random.random() == first


def test_prediction_writer_starts_a_fresh_partial_file(tmp_path):
    """What a failed predict left in ``<file>.partial`` does not end up in the next one's file."""
    output = tmp_path / "predictions.jsonl"
    writer = PredictionWriter(str(output), print_predictions=False)
    trainer = SimpleNamespace(is_global_zero=True)
    writer.on_predict_start(trainer, None)
    writer.partial_path.write_text('{"stale": 1}\n', encoding="utf-8")  # a predict that failed
    writer.on_predict_start(trainer, None)  # the next predict
    writer.write_on_batch_end(trainer, None, [{"text": "a", "label": "pos"}], None, None, 0, 0)
    writer.on_predict_end(trainer, None)
    assert output.read_text(encoding="utf-8") == '{"text": "a", "label": "pos"}\n'


def test_a_validation_inside_an_epoch_that_goes_on_is_checkpointed(tmp_path, make_trainer):
    """``val_check_interval`` validates in the middle of an epoch that is not stopped: that
    checkpoint is written (only an epoch cut short by a stop saves nothing)."""
    checkpoint = WholeEpochCheckpoint(dirpath=tmp_path / "ckpt", filename="{step}", save_top_k=-1)
    trainer = make_trainer(
        callbacks=[checkpoint], enable_checkpointing=True, limit_train_batches=4,
        limit_val_batches=1, val_check_interval=2, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(BoringModel())
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["step=2.ckpt", "step=4.ckpt"]
