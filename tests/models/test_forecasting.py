"""``ForecastNet`` and ``Forecaster``: the roll-out, test_mse and training on the sine wave."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from lightning_gru.data import SineWaveDataModule
from lightning_gru.models import Forecaster, ForecastNet


@pytest.mark.parametrize("encoder", ["gru", "lstm", "rnn"])
def test_rollout_feeds_predictions_back(encoder):
    torch.manual_seed(0)
    net = ForecastNet(encoder, hidden_size=5)
    context, start = torch.randn(2, 30, 1), torch.randn(2, 1, 1)
    _, state = net(context)
    x, expected = start, []
    for _ in range(4):
        x, state = net(x, state)
        expected.append(x)
    torch.testing.assert_close(net.rollout(context, start, 4), torch.cat(expected, dim=1))
    other = net.rollout(torch.randn(2, 30, 1), start, 4)
    assert not torch.allclose(other, net.rollout(context, start, 4))  # the context sets the state


@pytest.mark.parametrize("encoder", ["gru", "mlp"])
def test_rollout_of_zero_steps_is_empty(encoder):
    net = ForecastNet(encoder, hidden_size=5)
    out = net.rollout(torch.randn(2, 30, 1), torch.randn(2, 1, 1), 0)
    assert out.shape == (2, 0, 1)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        net.rollout(torch.randn(2, 30, 1), torch.randn(2, 1, 1), -1)


def test_mlp_has_no_memory():
    torch.manual_seed(0)
    net = ForecastNet("mlp")
    x = torch.randn(3, 10, 1)
    y, state = net(x)
    assert state is None
    torch.testing.assert_close(y[:, 4], net(x[:, 4:5])[0][:, 0])  # each step on its own
    start = torch.randn(1, 1, 1)
    torch.testing.assert_close(
        net.rollout(torch.randn(1, 50, 1), start, 5), net.rollout(torch.randn(1, 9, 1), start, 5)
    )


def test_test_mse_is_the_rollout_mse(tmp_path, make_trainer):
    model = Forecaster(hidden_size=4)
    data = SineWaveDataModule(num_points=200, seq_len=10, batch_size=8)
    trainer = make_trainer()
    result = trainer.test(model, data, verbose=False)[0]
    forecast = model.forecast
    assert forecast["prediction"].shape == (1, 39, 1)  # 40 test points
    expected = torch.nn.functional.mse_loss(forecast["prediction"], forecast["target"][:, 1:])
    assert result["test_mse"] == pytest.approx(expected.item())
    assert (tmp_path / "forecast.png").is_file()


def test_val_rollout_mse_rolls_out_over_the_validation_points(make_trainer):
    torch.manual_seed(0)
    model = Forecaster(hidden_size=4)
    data = SineWaveDataModule(num_points=200, seq_len=10, batch_size=8, sliding=True)
    results = make_trainer().validate(model, data, verbose=False)
    data.setup()
    series = torch.as_tensor(data.series, dtype=torch.float32).reshape(1, -1, 1)
    start, stop = data.val_start, data.n_train
    prediction = model.net.rollout(
        series[:, :start], series[:, start : start + 1], stop - start - 1
    )
    expected = torch.nn.functional.mse_loss(prediction, series[:, start + 1 : stop])
    assert results[1]["val_rollout_mse"] == pytest.approx(expected.item())
    assert "val_loss" in results[0]


@pytest.mark.parametrize("points", [0, 1])
def test_a_rollout_target_without_points_to_score_is_refused(points):
    """Not an MSE of nothing (NaN, silently)."""
    model = Forecaster(hidden_size=4)
    batch = {"context": torch.randn(1, 30, 1), "target": torch.randn(1, points, 1)}
    with pytest.raises(ValueError, match=f"points >= 2, features\\): .* got \\(1, {points}, 1\\)"):
        model.test_step(batch, 0)


@pytest.mark.parametrize("encoder", ["gru", "mlp"])
def test_training_lowers_the_loss(make_trainer, encoder):
    torch.manual_seed(0)
    model = Forecaster(encoder, hidden_size=8, optimizer=partial(torch.optim.Adam, lr=0.02))
    data = SineWaveDataModule(num_points=300, seq_len=10, batch_size=8)
    trainer = make_trainer(max_epochs=1, limit_train_batches=0)
    first = trainer.validate(model, data, verbose=False)[0]["val_loss"]
    make_trainer(max_epochs=15).fit(model, data)
    assert trainer.validate(model, data, verbose=False)[0]["val_loss"] < first / 2


def test_checkpoint_round_trip(tmp_path, make_trainer):
    model = Forecaster("lstm", hidden_size=3)
    trainer = make_trainer(fast_dev_run=True)
    trainer.fit(model, SineWaveDataModule(num_points=100, seq_len=5))
    trainer.save_checkpoint(tmp_path / "f.ckpt")
    loaded = Forecaster.load_from_checkpoint(tmp_path / "f.ckpt")
    assert loaded.hparams.encoder == "lstm" and "optimizer" not in loaded.hparams
    x = torch.randn(2, 5, 1)
    torch.testing.assert_close(loaded(x)[0], model(x)[0])


@pytest.mark.parametrize("encoder", ["gru", "mlp"])
def test_a_plateau_scheduler_watches_the_roll_out_in_the_epochs_that_validate(
    make_trainer, encoder
):
    """Windows as long as the recipes' leave no validation window (no val_loss), and
    validation every few epochs leaves epochs with no new value: the scheduler steps on
    val_rollout_mse, in the validating epochs only."""
    data = SineWaveDataModule(num_points=400, seq_len=150, batch_size=32, sliding=True)
    model = Forecaster(
        encoder=encoder,
        hidden_size=4,
        lr_scheduler=partial(torch.optim.lr_scheduler.ReduceLROnPlateau, factor=0.5, patience=0),
    )
    trainer = make_trainer(max_epochs=4, check_val_every_n_epoch=2)
    trainer.fit(model, data)
    scheduler = trainer.lr_scheduler_configs[0]
    assert scheduler.monitor == "val_rollout_mse" and scheduler.frequency == 2
    assert scheduler.scheduler.last_epoch == 2  # epochs 1 and 3


def test_a_plateau_scheduler_without_validation_is_refused(make_trainer):
    """Guards against: the fit ending after its first epoch with Lightning's "ReduceLROnPlateau
    conditioned on metric val_rollout_mse which is not available"."""
    data = SineWaveDataModule(num_points=200, seq_len=10, batch_size=8)
    plateau = partial(torch.optim.lr_scheduler.ReduceLROnPlateau, patience=0)
    model = Forecaster(hidden_size=4, lr_scheduler=plateau)
    trainer = make_trainer(max_epochs=2, limit_val_batches=0)
    with pytest.raises(ValueError, match="ReduceLROnPlateau watches a validation metric"):
        trainer.fit(model, data)
    assert trainer.current_epoch == 0


@pytest.mark.parametrize("precision", ["bf16-mixed", "bf16-true"])
def test_fits_and_tests_in_bfloat16(tmp_path, make_trainer, precision):
    """Under autocast the roll-out feeds a bfloat16 prediction back with a float32 state, and
    in bfloat16 the forecast figure gets bfloat16 series."""
    torch.manual_seed(0)
    model = Forecaster(hidden_size=4)
    data = SineWaveDataModule(num_points=200, seq_len=10, batch_size=8)
    trainer = make_trainer(precision=precision, limit_train_batches=2)
    trainer.fit(model, data)
    result = trainer.test(model, data, verbose=False)[0]
    assert torch.isfinite(torch.tensor(result["test_mse"]))
    assert (tmp_path / "forecast.png").is_file()


def test_a_plateau_scheduler_is_refused_when_the_data_holds_no_validation(make_trainer):
    """Guards against: ``val_fraction=0`` (no windows, no roll-out) failing after the first
    epoch with Lightning's "ReduceLROnPlateau conditioned on metric val_rollout_mse which is
    not available"."""
    data = SineWaveDataModule(num_points=200, seq_len=10, batch_size=8, val_fraction=0)
    plateau = partial(torch.optim.lr_scheduler.ReduceLROnPlateau, patience=0)
    model = Forecaster(hidden_size=4, lr_scheduler=plateau)
    trainer = make_trainer(max_epochs=2)
    with pytest.raises(ValueError, match="ReduceLROnPlateau watches val_rollout_mse, and the"):
        trainer.fit(model, data)
    assert trainer.global_step == 0
    trainer = make_trainer(max_epochs=2)  # the same data without the scheduler trains
    trainer.fit(Forecaster(hidden_size=4), data)
    assert trainer.global_step == 4  # 14 windows, 2 batches an epoch


@pytest.mark.parametrize(
    ("context", "start", "message"),
    [
        ((1, 10, 1), (1, 3, 1), r"start must be one step, \(batch, 1, features\)"),
        ((1, 10, 1), (1, 1), r"start must be one step"),
        ((2, 10, 1), (1, 1, 1), r"context must be \(batch, steps, features\) with start's batch"),
    ],
)
def test_rollout_refuses_a_start_of_several_steps_or_another_batch(context, start, message):
    """Guards against: a start of 3 steps giving 12 predictions for ``steps=4`` (each step fed
    all 3 back), silently; a context of another batch failing in torch's hidden-size check."""
    net = ForecastNet(hidden_size=4)
    with pytest.raises(ValueError, match=message):
        net.rollout(torch.randn(*context), torch.randn(*start), steps=4)
