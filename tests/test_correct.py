"""Gap correctors: each checked against an independent computation (scipy, scikit-learn, numpy by hand, real data).

Expected values are computed in the tests from the inputs, never stored.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg
import sklearn.base
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler

import workbench
from workbench import PairedEmbeddings
from workbench.correct import (
    ALL_CORRECTORS,
    AblateGapDimensions,
    GapShift,
    LinearAdapter,
    MeanCenter,
    Procrustes,
    ProjectOutGap,
    Standardize,
)
from workbench.gap import clip_loss

# Small, fast settings for the generic tests (LinearAdapter: a larger rate so a few epochs visibly move it).
SMALL_PARAMS: dict[type, dict] = {
    GapShift: {"delta": 1.0},
    LinearAdapter: {"epochs": 5, "lr": 1e-2, "batch_size": 16, "temperature": 0.1},
    AblateGapDimensions: {"k": 3},
}


def _make(cls: type):
    return cls(**SMALL_PARAMS.get(cls, {}))


# -- independent helpers -----------------------------------------------------------------------------------------
def _unit(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _centroid_distance(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a.mean(axis=0) - b.mean(axis=0)))


def _recall_at_1(a, b) -> tuple[float, float]:
    """N-way R@1 with cosine similarity: image->text (rows) and text->image (columns); pair i is (i, i)."""
    sim = _unit(a) @ _unit(b).T
    hits = np.arange(len(sim))
    return float(np.mean(sim.argmax(axis=1) == hits)), float(np.mean(sim.argmax(axis=0) == hits))


def _info_nce(a, b, logit_scale: float) -> float:
    """Symmetric InfoNCE over all pairs as one batch (workbench.gap.clip_loss, checked against open_clip there)."""
    return clip_loss(a, b, logit_scale=logit_scale, batch_size=len(a))


def _gapped_pairs(rng: np.random.Generator, n: int = 60, dim: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Row-paired synthetic embeddings with a shared signal and a modality gap (each side its own offset)."""
    signal = rng.normal(size=(n, dim))
    offset_a, offset_b = rng.normal(size=dim) * 1.5, rng.normal(size=dim) * 1.5
    a = signal + 0.5 * rng.normal(size=(n, dim)) + offset_a
    b = signal + 0.5 * rng.normal(size=(n, dim)) + offset_b
    return a, b


@pytest.fixture(scope="module")
def clip() -> tuple[np.ndarray, np.ndarray]:
    """The 500 CLIP ViT-B/16 MSCOCO image/caption pairs of Liang et al. as float64 row-paired arrays."""
    a, b = workbench.datasets.load("liang2022/clip").matched()
    return a.astype(np.float64), b.astype(np.float64)


# -- Procrustes ----------------------------------------------------------------------------------------------------
def test_procrustes_equals_scipy(rng):
    a, b = _gapped_pairs(rng)
    corrector = Procrustes().fit(a[:30], b[:30])
    expected, _ = scipy.linalg.orthogonal_procrustes(_unit(b[:30]), _unit(a[:30]))
    np.testing.assert_allclose(corrector.rotation_, expected, atol=1e-10)
    a2, b2 = corrector.transform(a[30:], b[30:])
    np.testing.assert_allclose(a2, _unit(a[30:]), atol=1e-6)
    np.testing.assert_allclose(b2, _unit(_unit(b[30:]) @ expected), atol=1e-6)


def test_procrustes_recovers_a_planted_rotation(rng):
    dim = 12
    a = _unit(rng.normal(size=(80, dim)))
    rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    b = a @ rotation.T  # b @ rotation == a
    corrector = Procrustes().fit(a[:40], b[:40])
    np.testing.assert_allclose(corrector.rotation_, rotation, atol=1e-8)
    a2, b2 = corrector.transform(a[40:], b[40:])  # held-out pairs land on each other
    np.testing.assert_allclose(b2, a2, atol=1e-6)


def test_procrustes_with_fewer_pairs_than_dimensions_is_the_fit_closest_to_the_identity(rng):
    from workbench.correct._paired import _closest_procrustes_rotation

    # one pair: the minimiser closest to the identity is the plane rotation taking b's item onto a's (by hand)
    x, y = _unit(rng.normal(size=(1, 3)))[0], _unit(rng.normal(size=(1, 3)))[0]
    c = x @ y
    w = _unit((y - c * x)[None])[0]
    turn = np.sqrt(1 - c * c) * (np.outer(x, w) - np.outer(w, x))
    plane = np.eye(3) + (c - 1) * (np.outer(x, x) + np.outer(w, w)) + turn
    np.testing.assert_allclose(x @ plane, y, atol=1e-12)
    np.testing.assert_allclose(_closest_procrustes_rotation(np.outer(x, y)), plane, atol=1e-12)
    # 20 pairs in 50 dimensions: as good a fit as scipy's, orthogonal, nearer the identity, and independent of
    # the order of the pairs (an SVD's free directions are not)
    a, b = _unit(rng.normal(size=(20, 50))), _unit(rng.normal(size=(20, 50)))
    rotation = Procrustes().fit(a, b).rotation_
    reference, _ = scipy.linalg.orthogonal_procrustes(b, a)
    assert np.linalg.norm(b @ rotation - a) == pytest.approx(np.linalg.norm(b @ reference - a), rel=1e-10)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(50), atol=1e-10)
    assert np.trace(rotation) > np.trace(reference) and np.trace(rotation) > 50 - 2 * 20
    np.testing.assert_allclose(Procrustes().fit(a[::-1], b[::-1]).rotation_, rotation, atol=1e-10)
    # directions orthogonal to both training spans are left where they are
    free = scipy.linalg.null_space(np.vstack([a, b]))
    np.testing.assert_allclose(free.T @ rotation, free.T, atol=1e-10)


# -- Standardize ---------------------------------------------------------------------------------------------------
def test_standardize_equals_standard_scaler_per_modality(rng):
    a, b = _gapped_pairs(rng)
    b = b * np.linspace(0.2, 3.0, b.shape[1])  # unequal spread per dimension
    corrector = Standardize().fit(a[:30], b[:30])
    scaler_a = StandardScaler().fit(_unit(a[:30]))
    scaler_b = StandardScaler().fit(_unit(b[:30]))
    for rows in (slice(None, 30), slice(30, None)):  # training rows and held-out rows
        a2, b2 = corrector.transform(a[rows], b[rows])
        np.testing.assert_allclose(a2, _unit(scaler_a.transform(_unit(a[rows]))), atol=1e-6)
        np.testing.assert_allclose(b2, _unit(scaler_b.transform(_unit(b[rows]))), atol=1e-6)


def test_standardize_guards_a_constant_dimension(rng):
    a, b = _gapped_pairs(rng, n=20, dim=6)
    a[:, 2] = 0.0  # constant (zero) in every training row of a: zero std
    corrector = Standardize().fit(a, b)
    assert corrector.scale_a_[2] == 1.0
    a2, _ = corrector.transform(a, b)
    assert np.isfinite(a2).all()
    np.testing.assert_allclose(a2, _unit(StandardScaler().fit_transform(_unit(a))), atol=1e-6)


# -- GapShift ------------------------------------------------------------------------------------------------------
def test_gap_shift_by_hand(rng):
    a, b = _gapped_pairs(rng)
    ua, ub = _unit(a), _unit(b)
    g = ua.mean(axis=0) - ub.mean(axis=0)
    corrector = GapShift(delta=1.0).fit(a, b)
    np.testing.assert_allclose(corrector.gap_, g, atol=1e-12)
    a2, b2 = corrector.transform(a, b)
    np.testing.assert_allclose(a2, _unit(ua - g / 2), atol=1e-6)
    np.testing.assert_allclose(b2, _unit(ub + g / 2), atol=1e-6)
    before = _centroid_distance(ua, ub)
    assert before > 0.5
    assert _centroid_distance(a2, b2) < 0.1 * before
    # delta=0 is the identity (on normalised inputs); a negative delta widens the gap
    a0, b0 = GapShift(delta=0.0).fit_transform(a, b)
    np.testing.assert_allclose(a0, ua, atol=1e-6)
    np.testing.assert_allclose(b0, ub, atol=1e-6)
    assert _centroid_distance(*GapShift(delta=-0.5).fit_transform(a, b)) > before


def test_gap_shift_delta_is_validated_at_fit():
    a, b = np.eye(3), np.ones((3, 3)) + np.eye(3)
    with pytest.raises(ValueError, match="delta must be finite"):
        GapShift(delta=float("nan")).fit(a, b)
    with pytest.raises(TypeError, match="delta must be a real number"):
        GapShift(delta="1").fit(a, b)


# -- real data: liang2022/clip ------------------------------------------------------------------------------------
def test_clip_gap_closers_close_the_gap(clip):
    a, b = clip
    before = _centroid_distance(a, b)
    assert before > 0.5  # the CLIP modality gap
    shifted = GapShift(1.0).fit_transform(a, b)
    centred = MeanCenter().fit_transform(a, b)
    assert _centroid_distance(*shifted) < 0.02
    assert _centroid_distance(*centred) < 0.03


def test_clip_mean_center_keeps_retrieval(clip):
    a, b = clip
    image_to_text, text_to_image = _recall_at_1(a, b)
    assert image_to_text > 0.4 and text_to_image > 0.4  # sanity: a working CLIP, far above 1/500
    new_i2t, new_t2i = _recall_at_1(*MeanCenter().fit_transform(a, b))
    assert abs(new_i2t - image_to_text) <= 0.02
    assert abs(new_t2i - text_to_image) <= 0.02


def test_clip_gap_shift_closes_the_gap_at_a_retrieval_cost(clip):
    # Closing the gap by translation is not free: renormalising each shifted row reorders the cross-modal
    # similarities. On these 500 pairs R@1 falls by well over 0.1 in both directions (Liang et al. also find
    # that shifting the gap changes downstream results); a small shift keeps it.
    a, b = clip
    image_to_text, text_to_image = _recall_at_1(a, b)
    new_i2t, new_t2i = _recall_at_1(*GapShift(1.0).fit_transform(a, b))
    assert new_i2t < image_to_text - 0.1
    assert new_t2i < text_to_image - 0.1
    small_i2t, small_t2i = _recall_at_1(*GapShift(0.1).fit_transform(a, b))
    assert abs(small_i2t - image_to_text) <= 0.02
    assert abs(small_t2i - text_to_image) <= 0.02


def test_linear_adapter_beats_the_identity_on_held_out_pairs(clip):
    a, b = clip
    order = np.random.default_rng(0).permutation(len(a))
    train, test = np.sort(order[: len(a) // 2]), np.sort(order[len(a) // 2 :])
    adapter = LinearAdapter().fit(a[train], b[train])
    logit_scale = 1.0 / adapter.temperature
    identity_loss = _info_nce(a[test], b[test], logit_scale)
    adapted_loss = _info_nce(*adapter.transform(a[test], b[test]), logit_scale)
    assert adapted_loss < identity_loss
    # training lowered its own loss
    assert adapter.loss_curve_[-1] < adapter.loss_curve_[0]


# -- LinearAdapter ------------------------------------------------------------------------------------------------
def test_linear_adapter_starts_at_the_identity(rng):
    a, b = _gapped_pairs(rng, n=20, dim=8)
    adapter = LinearAdapter(epochs=0).fit(a, b)
    np.testing.assert_array_equal(adapter.weight_a_, np.eye(8))
    a2, b2 = adapter.transform(a, b)
    np.testing.assert_allclose(a2, _unit(a), atol=1e-6)
    np.testing.assert_allclose(b2, _unit(b), atol=1e-6)
    # another output dimension: both sides start at one semi-orthogonal matrix
    down = LinearAdapter(dim=5, epochs=0).fit(a, b)
    assert down.weight_a_.shape == (5, 8)
    np.testing.assert_allclose(down.weight_a_ @ down.weight_a_.T, np.eye(5), atol=1e-6)
    np.testing.assert_array_equal(down.weight_a_, down.weight_b_)


def test_linear_adapter_is_seeded_and_leaves_torch_global_state_alone(rng):
    torch = pytest.importorskip("torch")
    a, b = _gapped_pairs(rng, n=40, dim=8)
    params = {"dim": 6, "epochs": 3, "lr": 1e-2, "batch_size": 8}
    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    first = LinearAdapter(**params, seed=3).fit(a, b)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.get_num_threads() == threads
    again = LinearAdapter(**params, seed=3).fit(a, b)
    other = LinearAdapter(**params, seed=4).fit(a, b)
    np.testing.assert_array_equal(first.weight_a_, again.weight_a_)
    np.testing.assert_array_equal(first.weight_b_, again.weight_b_)
    assert not np.allclose(first.weight_a_, other.weight_a_)


def _reference_adapter(a, b, *, dim, epochs, lr, batch_size, temperature, weight_decay, seed):
    """The textbook loop: two torch.nn.Linear maps, torch.optim.AdamW, loss.backward() (what the docstring says)."""
    import torch
    import torch.nn.functional as F

    start = torch.as_tensor(LinearAdapter()._start_matrix(a.shape[1], dim, seed), dtype=torch.float32)
    layers = [torch.nn.Linear(a.shape[1], dim, bias=False) for _ in range(2)]
    with torch.no_grad():
        for layer in layers:
            layer.weight.copy_(start)
    xa, xb = (torch.as_tensor(_unit(x), dtype=torch.float32) for x in (a, b))
    optimizer = torch.optim.AdamW([layer.weight for layer in layers], lr=lr, weight_decay=weight_decay)
    shuffle = torch.Generator().manual_seed(seed)
    curve = []
    for _ in range(epochs):
        total = 0.0
        for rows in torch.tensor_split(torch.randperm(len(a), generator=shuffle), -(-len(a) // batch_size)):
            za, zb = F.normalize(layers[0](xa[rows]), dim=1), F.normalize(layers[1](xb[rows]), dim=1)
            logits = (1.0 / temperature) * za @ zb.T  # the logit scale 1 / temperature, as the fit applies it
            target = torch.arange(len(rows))
            loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(rows)
        curve.append(total / len(a))
    return [layer.weight.detach().double().numpy() for layer in layers], curve


@pytest.mark.parametrize("params", [{}, {"dim": 6, "weight_decay": 0.1, "lr": 1e-2, "batch_size": 7}])
def test_linear_adapter_equals_the_textbook_torch_loop_bit_for_bit(rng, params):
    # the fit writes AdamW out by hand (no torch.optim import on the CPU): it must be the same optimizer exactly
    pytest.importorskip("torch")
    a, b = _gapped_pairs(rng, n=50, dim=8)
    full = {"dim": 8, "epochs": 4, "lr": 1e-4, "batch_size": 64, "temperature": 0.01, "weight_decay": 0.0,
            "seed": 2} | params
    (weight_a, weight_b), curve = _reference_adapter(a, b, **full)
    adapter = LinearAdapter(**full).fit(a, b)
    np.testing.assert_array_equal(adapter.weight_a_, weight_a)
    np.testing.assert_array_equal(adapter.weight_b_, weight_b)
    assert adapter.loss_curve_ == curve
    assert not np.array_equal(weight_a, np.eye(8)[: full["dim"]])  # it trained


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"dim": 0}, ValueError, "dim must be >= 1"),
        ({"epochs": -1}, ValueError, "epochs must be >= 0"),
        ({"lr": 0.0}, ValueError, "lr must be > 0"),
        ({"batch_size": 1}, ValueError, "batch_size must be >= 2"),
        ({"temperature": -0.1}, ValueError, "temperature must be > 0"),
        ({"weight_decay": -1.0}, ValueError, "weight_decay must be >= 0"),
        ({"seed": 1.5}, TypeError, "seed must be an integer"),
        ({"device": "no-such-device"}, ValueError, "not a torch device"),
    ],
)
def test_linear_adapter_parameters_are_validated_at_fit(params, error, match):
    adapter = LinearAdapter(**params)  # __init__ stores, fit validates
    with pytest.raises(error, match=match):
        adapter.fit(np.eye(3), np.ones((3, 3)) + np.eye(3))


def test_importing_correct_does_not_import_torch():
    code = "import workbench.correct, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- ProjectOutGap and AblateGapDimensions ------------------------------------------------------------------------
def test_project_out_gap_removes_the_gap_direction(rng):
    a, b = _gapped_pairs(rng)
    g = _unit(a[:30]).mean(axis=0) - _unit(b[:30]).mean(axis=0)
    u = g / np.linalg.norm(g)
    corrector = ProjectOutGap().fit(a[:30], b[:30])
    np.testing.assert_allclose(corrector.direction_, u, atol=1e-12)
    a2, b2 = corrector.transform(a[30:], b[30:])
    # no component left along the gap direction, on held-out rows too
    assert np.abs(a2 @ u).max() < 1e-6 and np.abs(b2 @ u).max() < 1e-6
    # and the rest of each vector is kept: it equals the normalised orthogonal remainder
    ua = _unit(a[30:])
    np.testing.assert_allclose(a2, _unit(ua - np.outer(ua @ u, u)), atol=1e-6)
    # the training centroids now differ only orthogonally to u, so the gap shrinks
    a_train, b_train = corrector.transform(a[:30], b[:30])
    assert _centroid_distance(a_train, b_train) < _centroid_distance(_unit(a[:30]), _unit(b[:30]))


def test_project_out_gap_needs_a_gap():
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="no gap direction"):
        ProjectOutGap().fit(a, a[::-1])


def test_ablate_gap_dimensions_by_hand(rng):
    a, b = _gapped_pairs(rng)
    g = _unit(a[:30]).mean(axis=0) - _unit(b[:30]).mean(axis=0)
    expected = np.argsort(np.abs(g))[::-1][:4]
    corrector = AblateGapDimensions(k=4).fit(a[:30], b[:30])
    np.testing.assert_array_equal(corrector.dimensions_, expected)
    a2, b2 = corrector.transform(a[30:], b[30:])
    assert (a2[:, expected] == 0).all() and (b2[:, expected] == 0).all()
    kept = np.setdiff1d(np.arange(a.shape[1]), expected)
    np.testing.assert_allclose(a2[:, kept], _unit(_unit(a[30:])[:, kept]), atol=1e-6)


@pytest.mark.parametrize("k", [0, 16, 17, -1])
def test_ablate_gap_dimensions_k_must_leave_a_dimension(rng, k):
    a, b = _gapped_pairs(rng, n=10, dim=16)
    with pytest.raises(ValueError, match="k must be between 1 and D - 1 = 15"):
        AblateGapDimensions(k=k).fit(a, b)
    AblateGapDimensions(k=15).fit(a, b)  # the largest allowed


# -- every corrector ------------------------------------------------------------------------------------------------
def test_all_correctors_are_exported():
    import workbench.correct as correct

    assert set(ALL_CORRECTORS) == {getattr(correct, name) for name in correct.__all__ if name != "ALL_CORRECTORS"}
    assert all(issubclass(cls, sklearn.base.BaseEstimator) for cls in ALL_CORRECTORS)


@pytest.mark.parametrize("cls", ALL_CORRECTORS, ids=lambda c: c.__name__)
def test_fit_on_half_transform_the_other_half(cls, rng):
    a, b = _gapped_pairs(rng)
    corrector = _make(cls).fit(a[:30], b[:30])
    assert corrector.n_features_in_ == a.shape[1]
    a2, b2 = corrector.transform(a[30:], b[30:45])  # held-out galleries of different sizes
    assert a2.shape == (30, a.shape[1]) and b2.shape == (15, a.shape[1])
    for out in (a2, b2):
        assert out.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(out.astype(np.float64), axis=1), 1.0, atol=1e-6)
    # the corrector does something: an identity map (after normalisation) would fail here
    change = max(np.abs(a2 - _unit(a[30:])).max(), np.abs(b2 - _unit(b[30:45])).max())
    assert change > 1e-2


@pytest.mark.parametrize("cls", ALL_CORRECTORS, ids=lambda c: c.__name__)
def test_inputs_torch_paired_and_numpy_agree(cls, rng):
    torch = pytest.importorskip("torch")
    a, b = _gapped_pairs(rng, n=30)
    from_numpy = _make(cls).fit_transform(a, b)
    from_torch = _make(cls).fit_transform(torch.tensor(a), torch.tensor(b))
    paired = PairedEmbeddings.from_arrays(a, b)
    from_paired = _make(cls).fit(paired).transform(paired)
    for other in (from_torch, from_paired):
        np.testing.assert_allclose(other[0], from_numpy[0], atol=1e-5)
        np.testing.assert_allclose(other[1], from_numpy[1], atol=1e-5)


@pytest.mark.parametrize("cls", ALL_CORRECTORS, ids=lambda c: c.__name__)
def test_clone_and_params(cls, rng):
    a, b = _gapped_pairs(rng)
    corrector = _make(cls).fit(a[:30], b[:30])
    copy = sklearn.base.clone(corrector)
    assert copy.get_params() == corrector.get_params()
    assert not hasattr(copy, "n_features_in_")  # a clone is unfitted
    with pytest.raises(NotFittedError):
        copy.transform(a, b)
    expected = corrector.transform(a[30:], b[30:])
    got = copy.fit(a[:30], b[:30]).transform(a[30:], b[30:])
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert copy.set_params(**copy.get_params()) is copy


@pytest.mark.parametrize("cls", ALL_CORRECTORS, ids=lambda c: c.__name__)
def test_transform_before_fit_raises(cls):
    with pytest.raises(NotFittedError):
        _make(cls).transform(np.eye(4), np.eye(4))


@pytest.mark.parametrize("cls", ALL_CORRECTORS, ids=lambda c: c.__name__)
def test_bad_inputs_raise_naming_the_problem(cls, rng):
    a, b = _gapped_pairs(rng, n=12, dim=8)
    with pytest.raises(ValueError, match="row counts differ: a has 12 rows but b has 11"):
        _make(cls).fit(a, b[:11])
    with pytest.raises(ValueError, match="dimensions differ: a has 8, b has 7"):
        _make(cls).fit(a, b[:, :7])
    for bad in (np.nan, np.inf, -np.inf):
        broken = a.copy()
        broken[3, 1] = bad
        with pytest.raises(ValueError, match=r"a: 1 of 12 rows contain (NaN|inf) \(rows 3\)"):
            _make(cls).fit(broken, b)
        with pytest.raises(ValueError, match=r"b: 1 of 12 rows contain (NaN|inf)"):
            _make(cls).fit(a, broken)
    zero = b.copy()
    zero[[2, 5]] = 0.0
    with pytest.raises(ValueError, match=r"b: 2 of 12 rows have zero norm \(rows 2, 5\)"):
        _make(cls).fit(a, zero)
    with pytest.raises(ValueError, match="at least 2 pairs, got 1"):
        _make(cls).fit(a[:1], b[:1])
    with pytest.raises(ValueError, match="must be a 2-D matrix"):
        _make(cls).fit(a[0], b[0])
    with pytest.raises(TypeError, match="must hold numbers"):
        _make(cls).fit(a.astype(str), b)
    with pytest.raises(TypeError, match=r"two arrays \(a, b\) or one PairedEmbeddings are needed"):
        _make(cls).fit(a)
    with pytest.raises(TypeError, match="either a PairedEmbeddings or two arrays"):
        _make(cls).fit(PairedEmbeddings.from_arrays(a, b), b)
    fitted = _make(cls).fit(a, b)
    with pytest.raises(ValueError, match=rf"b has 7 dimensions but this {cls.__name__} was fitted on 8"):
        fitted.transform(a, b[:, :7])
    with pytest.raises(ValueError, match=rf"a has 9 dimensions but this {cls.__name__} was fitted on 8"):
        fitted.transform(np.ones((2, 9)), b)
    with pytest.raises(ValueError, match="a: 1 of 12 rows have zero norm"):
        fitted.transform(np.where(np.arange(12)[:, None] == 0, 0.0, a), b)
