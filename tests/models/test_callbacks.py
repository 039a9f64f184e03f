"""``LearningCurves``, ``PredictionWriter`` and the figure helpers."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_gru.data import SineWaveDataModule
from lightning_gru.models import Forecaster, LearningCurves, PredictionWriter
from lightning_gru.models.callbacks import RandomStates, WholeEpochCheckpoint
from lightning_gru.models.figures import log_table, plot_history


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
    printed = capsys.readouterr().out
    assert f"predictions written to {output}" in printed
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


def test_log_table_writes_markdown(tmp_path, make_trainer):
    path = log_table(make_trainer(), "generated_text", ["prefix", "text"], [["a|b", "c"]])
    assert path == tmp_path / "generated_text.md"
    assert path.read_text().splitlines() == ["| prefix | text |", "| --- | --- |", "| a\\|b | c |"]


def test_plot_history_panels():
    history = {"train_loss": [(0, 2.0), (1, 1.0)], "val_loss": [(0, 2.5)], "val_acc": [(0, 0.5)]}
    fig = plot_history(history, "title")
    assert [ax.get_title() for ax in fig.axes] == ["acc", "loss"]
    assert [line.get_label() for line in fig.axes[1].lines] == ["train", "val"]


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
