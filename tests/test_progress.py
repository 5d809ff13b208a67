"""Progress on long work: every call that can take seconds shows one tqdm bar by default; ``progress=False`` is quiet.

Bars are counted by replacing ``tqdm.auto.tqdm`` (which the package imports at call time) with a subclass that
records every bar made and whether it is shown; stderr is read too, where a shown text bar lands.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import workbench  # noqa: E402
from workbench.compare import compare_correctors  # noqa: E402
from workbench.correct import MeanCenter  # noqa: E402
from workbench.panels import CorrectorComparison  # noqa: E402
from workbench.towers import FeatureHead  # noqa: E402
from workbench.train import ContrastiveTrainer, ValidationSet, learning_curve, temperature_study  # noqa: E402


@pytest.fixture
def bars(monkeypatch):
    """The bars made during the test: (description at the end, shown?) per bar."""
    import tqdm.auto

    made: list = []

    class Recording(tqdm.auto.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append((self, not self.disable))  # close() sets disable, so it is read here

    monkeypatch.setattr(tqdm.auto, "tqdm", Recording)

    def shown() -> list[str]:
        return [bar.desc for bar, on in made if on]

    return shown


def _toy(n=60, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, dim)).astype(np.float32)
    b = (a @ rng.normal(size=(dim, dim)) + 0.3 * rng.normal(size=(n, dim))).astype(np.float32)
    return a, b


def _trainer(seed=0, temperature=0.07, learn_temperature=True, epochs=2):
    return ContrastiveTrainer(FeatureHead(6, 4, hidden=8, seed=seed), FeatureHead(6, 4, hidden=8, seed=seed + 1),
                              epochs=epochs, batch_size=20, seed=seed, temperature=temperature,
                              learn_temperature=learn_temperature)


def test_fit_shows_a_bar_over_epochs_by_default(bars, capsys):
    a, b = _toy()
    _trainer(epochs=3).fit(a, b)
    assert bars() == ["training"]
    err = capsys.readouterr().err
    assert "training" in err and "3/3" in err


def test_fit_is_quiet_with_progress_false(bars, capsys):
    a, b = _toy()
    _trainer().fit(a, b, progress=False)
    assert bars() == []
    assert capsys.readouterr().err == ""


def test_temperature_study_shows_exactly_one_bar_naming_the_run(bars, capsys):
    a, b = _toy()
    val = ValidationSet(*_toy(20, seed=1))
    table = temperature_study(lambda tau, s: _trainer(s, temperature=tau, learn_temperature=False), a, b, val,
                              temperatures=(0.05, 0.5), seeds=(0, 1))
    assert table.height == 4
    assert bars() == ["temperature study: tau=0.5, seed 1"]  # one bar; its description follows the run in training
    err = capsys.readouterr().err
    assert "4/4" in err and "training" not in err  # the trainers' own bars stay off


def test_temperature_study_is_quiet_with_progress_false(bars, capsys):
    a, b = _toy()
    val = ValidationSet(*_toy(20, seed=1))
    temperature_study(lambda tau, s: _trainer(s, temperature=tau, learn_temperature=False), a, b, val,
                      temperatures=(0.05, 0.5), progress=False)
    assert bars() == []
    assert capsys.readouterr().err == ""


def test_learning_curve_shows_one_bar_naming_size_and_seed(bars, capsys):
    a, b = _toy()
    val = ValidationSet(*_toy(20, seed=1))
    runs, _ = learning_curve(lambda s: _trainer(s), a, b, val, sizes=[20, 60], seeds=[0, 1])
    assert runs.height == 4
    assert bars() == ["learning curve: 60 pairs, seed 1"]
    err = capsys.readouterr().err
    assert "4/4" in err and "training" not in err
    learning_curve(lambda s: _trainer(s), a, b, val, sizes=[20], seeds=[0], progress=False)
    assert len(bars()) == 1 and capsys.readouterr().err == ""


def test_compare_correctors_shows_one_bar_over_the_correctors(bars, capsys):
    paired = workbench.datasets.load("liang2022/clip")
    compare_correctors(paired, [MeanCenter()], n_resamples=10, probe=False)
    assert bars() == ["compare correctors: MeanCenter()"]
    assert "2/2" in capsys.readouterr().err  # none, then MeanCenter()
    compare_correctors(paired, [MeanCenter()], n_resamples=10, probe=False, progress=False)
    assert len(bars()) == 1 and capsys.readouterr().err == ""


def test_corrector_comparison_passes_progress_on(bars, capsys):
    paired = workbench.datasets.load("liang2022/clip")
    CorrectorComparison(paired, [MeanCenter()], n_resamples=10, probe=False)
    assert bars() == ["compare correctors: MeanCenter()"]
    assert "2/2" in capsys.readouterr().err
    CorrectorComparison(paired, [MeanCenter()], n_resamples=10, probe=False, progress=False)
    assert len(bars()) == 1 and capsys.readouterr().err == ""
