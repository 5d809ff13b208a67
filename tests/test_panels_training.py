"""TrainingMonitor: the history is the trainer's, and the live figure carries its values."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.panels import TrainingMonitor
from workbench.towers import FeatureHead
from workbench.train import ContrastiveTrainer, ValidationSet


@pytest.fixture
def data(rng):
    shared = rng.normal(size=(96, 12))
    xa = shared + 0.3 * rng.normal(size=(96, 12))
    xb = shared[:, ::-1] + 0.3 * rng.normal(size=(96, 12))
    return xa[:64], xb[:64], ValidationSet(xa[64:], xb[64:])


def _trainer(epochs=3):
    return ContrastiveTrainer(FeatureHead(12, dim=6, seed=0), FeatureHead(12, dim=6, seed=1), epochs=epochs,
                              batch_size=16, seed=0)


def test_live_figure_follows_the_trainer(data):
    xa, xb, validation = data
    monitor = TrainingMonitor()
    monitor.widget  # noqa: B018 -- shown before training, updated in place
    plot = monitor._ui["plot"]
    seen = []
    trainer = monitor.fit(_trainer(), xa, xb, validation=validation, on_epoch=lambda row: seen.append(row))
    history = trainer.history_
    assert monitor.history.equals(history) and len(seen) == 3
    assert history.columns == ["epoch", "loss", "temperature", "centroid_distance", "r1_a_to_b", "r1_b_to_a"]
    by_column = {t.meta["column"]: t for t in plot.data}
    for column in history.columns[1:]:
        assert list(by_column[column].x) == [1, 2, 3]
        np.testing.assert_allclose(by_column[column].y, history[column].to_numpy())
    assert "epoch 3 of 3" in monitor._ui["status"].value
    static = monitor.figure()
    np.testing.assert_allclose(static.data[0].y, history["loss"].to_numpy())


def test_callback_passed_to_fit_directly(data):
    xa, xb, _ = data
    monitor = TrainingMonitor()
    trainer = _trainer(epochs=2).fit(xa, xb, on_epoch=monitor.callback)
    assert monitor.history.equals(trainer.history_)
    fig = monitor.figure()
    assert [t.meta["column"] for t in fig.data] == ["loss", "temperature", "centroid_distance", "r1_a_to_b",
                                                  "r1_b_to_a"]
    assert len(fig.data[2].x) == 0  # no validation pairs: no held-out curves, and a note says so
    assert "no validation pairs" in fig.layout.annotations[-1].text


def test_bad_use_is_explained():
    with pytest.raises(ValueError, match="no trainer"):
        TrainingMonitor().fit()
    with pytest.raises(ValueError, match="'epoch' key"):
        TrainingMonitor().callback({"loss": 1.0})
