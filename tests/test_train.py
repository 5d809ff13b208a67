"""Contrastive training: the losses against independent formulas, determinism, frozen towers, the encoder view."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from workbench import embed  # noqa: E402
from workbench.gap import clip_loss  # noqa: E402
from workbench.towers import BagOfWordsText, FeatureHead, ImageCNN  # noqa: E402
from workbench.train import ContrastiveTrainer, ValidationSet, learning_curve, temperature_study  # noqa: E402


def _toy(rng, n=240, dim=12):
    """Row-paired features: b is a fixed linear map of a plus noise; two 'modalities' with different offsets."""
    a = rng.normal(size=(n, dim)).astype(np.float32)
    mix = rng.normal(size=(dim, dim)).astype(np.float32)
    b = (a @ mix + 0.3 * rng.normal(size=(n, dim))).astype(np.float32)
    return a, b


def _trainer(seed=0, dim=12, **kw):
    kw = {"epochs": 6, "batch_size": 40, "lr": 1e-2, **kw}
    return ContrastiveTrainer(FeatureHead(dim, 8, hidden=32, seed=seed), FeatureHead(dim, 8, hidden=32, seed=seed + 1),
                              seed=seed, **kw)


def test_infonce_equals_the_numpy_clip_loss(rng):
    za = torch.nn.functional.normalize(torch.tensor(rng.normal(size=(16, 5))), dim=-1)
    zb = torch.nn.functional.normalize(torch.tensor(rng.normal(size=(16, 5))), dim=-1)
    trainer = _trainer()
    scale = torch.tensor(np.log(1 / 0.07))
    ours = trainer._loss(za, zb, scale, torch.tensor(0.0)).item()
    assert ours == pytest.approx(clip_loss(za.numpy(), zb.numpy(), logit_scale=1 / 0.07, batch_size=16), rel=1e-9)


def test_sigmoid_loss_by_hand(rng):
    za = torch.nn.functional.normalize(torch.tensor(rng.normal(size=(6, 4))), dim=-1)
    zb = torch.nn.functional.normalize(torch.tensor(rng.normal(size=(6, 4))), dim=-1)
    trainer = _trainer(loss="sigmoid")
    t, b = 10.0, -5.0
    got = trainer._loss(za, zb, torch.tensor(np.log(t)), torch.tensor(b)).item()
    logits = t * za.numpy() @ zb.numpy().T + b
    z = 2 * np.eye(6) - 1
    expected = np.sum(np.log1p(np.exp(-z * logits))) / 6  # -log sigmoid(z * logits), summed, per example (SigLIP)
    assert got == pytest.approx(expected, rel=1e-9)


def test_training_lowers_the_loss_and_aligns_held_out_pairs(rng):
    a, b = _toy(rng)
    val = ValidationSet(a[200:], b[200:])
    seen = []
    trainer = _trainer().fit(a[:200], b[:200], validation=val, on_epoch=seen.append)
    h = trainer.history_
    assert seen == h.rows(named=True)
    assert h.columns == ["epoch", "loss", "temperature", "centroid_distance", "r1_a_to_b", "r1_b_to_a"]
    assert h["loss"][-1] < h["loss"][0]
    assert h["r1_a_to_b"][-1] > 10 / 40 and h["r1_b_to_a"][-1] > 10 / 40  # 10x chance on 40 held-out pairs
    # the recorded metrics are those of the final towers, recomputed here by hand
    ea, eb = trainer.embed("a", a[200:]), trainer.embed("b", b[200:])
    assert h["centroid_distance"][-1] == pytest.approx(np.linalg.norm(ea.mean(0) - eb.mean(0)), abs=1e-5)
    sims = ea @ eb.T
    assert h["r1_a_to_b"][-1] == pytest.approx(np.mean(sims.argmax(1) == np.arange(40)))


def test_training_is_deterministic_and_leaves_global_rng_alone(rng):
    a, b = _toy(rng)
    state = torch.random.get_rng_state()
    h1 = _trainer(seed=3).fit(a, b).history_
    h2 = _trainer(seed=3).fit(a, b).history_
    assert h1.equals(h2)
    assert torch.equal(state, torch.random.get_rng_state())
    assert not _trainer(seed=4).fit(a, b).history_.equals(h1)


def test_fixed_temperature_and_frozen_tower(rng):
    a, b = _toy(rng)
    trainer = _trainer(learn_temperature=False, temperature=0.2, train_b=False)
    frozen = {k: v.clone() for k, v in trainer.tower_b.state_dict().items()}
    trainer.fit(a, b)
    assert trainer.history_["temperature"].to_list() == pytest.approx([0.2] * 6, abs=1e-12)
    for k, v in trainer.tower_b.state_dict().items():
        assert torch.equal(v, frozen[k]), k


def test_trained_model_is_an_encoder_with_a_cache(rng, tmp_path):
    a, b = _toy(rng, n=80)
    trainer = _trainer(epochs=1).fit(a, b)
    encoder = trainer.as_encoder(("sensor", "other"), "toy-dual")
    first = embed(encoder, list(a[:10]), "sensor", cache_dir=tmp_path, progress=False)
    np.testing.assert_allclose(first.vectors, trainer.embed("a", a[:10]), atol=1e-6)
    assert embed(encoder, list(a[:10]), "sensor", cache_dir=tmp_path, progress=False).vectors.tobytes() == \
        first.vectors.tobytes()


def test_image_and_text_towers_train_end_to_end(rng):
    colors = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]], dtype=np.uint8)
    names = ["red", "green", "blue", "yellow"]
    n = 160
    ci = rng.integers(0, 4, n)
    images = np.zeros((n, 64, 64, 3), np.uint8)
    images[:] = colors[ci][:, None, None, :]
    captions = [f"a {names[c]} picture" for c in ci]
    trainer = ContrastiveTrainer(ImageCNN(16, width=16, seed=0), BagOfWordsText(captions, 16, seed=0), epochs=10,
                                 batch_size=40, lr=5e-3)
    relevance = np.argwhere(ci[:, None] == ci[None, :])
    trainer.fit(images, captions, validation=ValidationSet(images, captions, relevance))
    assert trainer.history_["r1_a_to_b"][-1] > 0.9  # colour is trivially learnable


def test_studies_run_over_sizes_seeds_and_temperatures(rng):
    a, b = _toy(rng, n=200)
    val = ValidationSet(a[160:], b[160:])
    runs, summary = learning_curve(lambda s: _trainer(seed=s, epochs=3), a[:160], b[:160], val, sizes=[20, 160],
                                   seeds=[0, 1])
    assert runs.height == 4 and summary["n_pairs"].to_list() == [20, 160]
    assert {"r1_a_to_b", "r1_a_to_b_lo", "r1_a_to_b_hi", "centroid_distance"} <= set(summary.columns)
    table = temperature_study(lambda tau, s: _trainer(seed=s, epochs=2, temperature=tau, learn_temperature=False),
                              a[:160], b[:160], val, temperatures=(0.05, 1.0))
    assert table["temperature"].to_list() == [0.05, 1.0]
    again = temperature_study(lambda tau, s: _trainer(seed=s, epochs=2, temperature=tau, learn_temperature=False),
                              a[:160], b[:160], val, temperatures=(0.05, 1.0))
    assert table.equals(again)


def test_learning_curve_takes_prepared_tensors_as_arrays(rng):
    """Prepared torch tensors (as workbench.alignment.align_towers passes them) give the numpy arrays' curve."""
    a, b = _toy(rng, n=120)
    val = ValidationSet(a[100:], b[100:])
    make = lambda s: _trainer(seed=s, epochs=2)  # noqa: E731
    runs_np, _ = learning_curve(make, a[:100], b[:100], val, sizes=[30, 100], seeds=[0], progress=False)
    runs_t, _ = learning_curve(make, torch.from_numpy(a[:100]), torch.from_numpy(b[:100]), val, sizes=[30, 100],
                               seeds=[0], progress=False)
    assert runs_np.equals(runs_t)


def test_bad_arguments(rng):
    a, b = _toy(rng, n=20)
    with pytest.raises(ValueError, match="row-paired"):
        _trainer().fit(a, b[:10])
    with pytest.raises(ValueError, match="loss"):
        _trainer(loss="triplet")
    with pytest.raises(ValueError, match="at least one tower"):
        _trainer(train_a=False, train_b=False)
    with pytest.raises(ValueError, match="temperature"):
        _trainer(temperature=0)


@pytest.fixture(scope="module")
def shapes_model():
    from workbench.datasets import shapes

    world = shapes(2000, seed=0, with_sound=True)
    # hold out whole (shape, colour) combinations first, then a random held-out part of the seen ones
    seen, unseen = world.split(0.2, seed=0, compositional=True)
    train, test = seen.split(0.2, seed=0)
    trainer = ContrastiveTrainer(ImageCNN(64, width=32, seed=0), BagOfWordsText(train.captions, 64, seed=0),
                                 epochs=8, batch_size=128, lr=3e-3, seed=0)
    trainer.fit(train.images, train.captions, validation=ValidationSet(test.images, test.captions, test.relevance()))
    return world, train, test, unseen, trainer


def test_shapes_alignment_reaches_retrieval_and_shows_a_gap(shapes_model):
    _world, _train, test, unseen, trainer = shapes_model
    final = trainer.history_.row(-1, named=True)
    # relevance by caption: every held-out item with the identical caption is a correct match
    n_captions = test.items["caption"].n_unique()
    assert final["r1_a_to_b"] >= 0.5 and final["r1_b_to_a"] >= 0.5
    assert final["r1_a_to_b"] >= 10 / n_captions and final["r1_b_to_a"] >= 10 / n_captions
    assert final["centroid_distance"] > 0.1  # the trained space has a modality gap
    # recomputed by hand from the towers
    ea, eb = trainer.embed("a", test.images), trainer.embed("b", test.captions)
    groups = test.caption_groups()
    best = (ea @ eb.T).argmax(axis=1)
    assert np.mean(groups[best] == groups) == pytest.approx(final["r1_a_to_b"], abs=0.01)  # ties aside
    # the compositional split: shape-colour combinations never seen in training, reported beside it
    comp = trainer.evaluate(ValidationSet(unseen.images, unseen.captions, unseen.relevance()))
    print(f"seen combinations R@1 {final['r1_a_to_b']:.3f} / {final['r1_b_to_a']:.3f}; "
          f"unseen combinations R@1 {comp['r1_a_to_b']:.3f} / {comp['r1_b_to_a']:.3f}")
    assert 0.0 <= comp["r1_a_to_b"] <= 1.0 and 0.0 <= comp["r1_b_to_a"] <= 1.0


def test_progressive_alignment_of_sound_to_the_frozen_caption_space(shapes_model):
    from workbench.retrieval import per_query_ranks
    from workbench.towers import AudioCNN

    world, train, test, _unseen, image_text = shapes_model
    # train only the new sound tower against the frozen caption tower (ImageBind-style)
    sound_text = ContrastiveTrainer(AudioCNN(64, sample_rate=world.sample_rate, seed=0), image_text.tower_b,
                                    train_b=False, epochs=6, batch_size=128, lr=3e-3, seed=0)
    frozen = {k: v.clone() for k, v in image_text.tower_b.state_dict().items()}
    sound_text.fit(train.sounds, train.captions)
    assert all(torch.equal(v, frozen[k]) for k, v in image_text.tower_b.state_dict().items())
    # emergent sound -> image retrieval, never trained: relevance by caption
    sounds = sound_text.embed("a", test.sounds)
    images = image_text.embed("a", test.images)
    emergent = per_query_ranks(sounds, images, test.relevance()).recall(1)
    chance = 1 / test.items["caption"].n_unique()
    assert emergent > 5 * chance


@pytest.mark.slow
def test_fine_tuning_the_last_block_of_an_open_clip_model_with_a_locked_text_tower(rng):
    pytest.importorskip("open_clip")
    from workbench.encoders import OpenCLIPEncoder
    from workbench.towers import OpenCLIPTower

    encoder = OpenCLIPEncoder("ViT-S-32", None, device="cpu")
    images = rng.integers(0, 255, size=(16, 64, 64, 3), dtype=np.uint8)
    captions = [f"photo number {i}" for i in range(16)]
    image_tower = OpenCLIPTower(encoder, "image", unlock_last=1)
    text_tower = OpenCLIPTower(encoder, "text")
    before = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    old = encoder.fingerprint
    trainer = ContrastiveTrainer(image_tower, text_tower, train_b=False, epochs=3, batch_size=8, lr=1e-3, seed=0)
    trainer.fit(images, captions)
    assert trainer.history_["loss"][-1] < trainer.history_["loss"][0]  # a few steps lower the loss
    after = encoder.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("visual.") for k in changed)  # the locked text tower did not move
    assert not any(k.startswith("visual.transformer.resblocks.0.") for k in changed)  # early blocks locked
    assert any(k.startswith("visual.ln_post") or k == "visual.proj" for k in changed)
    assert encoder.fingerprint == old  # computed once per loaded model ...
    assert encoder.refresh_fingerprint() != old  # ... so after fine-tuning, refresh it for the cache


def test_threads_apply_while_fitting_and_are_restored(rng):
    a, b = _toy(rng)
    before = torch.get_num_threads()
    seen = []
    trainer = _trainer(threads=1, epochs=2)
    trainer.fit(a, b, on_epoch=lambda row: seen.append(torch.get_num_threads()))
    assert seen == [1, 1] and torch.get_num_threads() == before
    # same seed, another thread count: the same training up to float rounding of parallel reductions
    other = _trainer(threads=2, epochs=2).fit(a, b).history_
    np.testing.assert_allclose(other["loss"].to_numpy(), trainer.history_["loss"].to_numpy(), rtol=1e-4)

    class Boom(Exception):
        pass

    def fail(row):
        raise Boom

    with pytest.raises(Boom):
        _trainer(threads=1, epochs=1).fit(a, b, on_epoch=fail)
    assert torch.get_num_threads() == before  # restored on error too
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            _trainer(threads=bad)


def test_seed_summary_is_the_mean_with_a_student_t_interval():
    import polars as pl
    from scipy import stats

    from workbench.train import summarise_seeds

    runs = pl.DataFrame({"temperature": [0.05] * 4 + [1.0] * 2, "seed": [0, 1, 2, 3, 0, 1],
                         "r1": [0.2, 0.4, 0.3, 0.5, 0.9, 0.7], "label": ["x"] * 6})
    summary = summarise_seeds(runs, "temperature")
    assert summary["temperature"].to_list() == [0.05, 1.0] and summary["seeds"].to_list() == [4, 2]
    assert "label" not in summary.columns and "seed" not in summary.columns
    values = np.array([0.2, 0.4, 0.3, 0.5])
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))  # issue 13.15
    row = summary.row(0, named=True)
    assert row["r1"] == pytest.approx(0.35) and row["r1_lo"] == pytest.approx(lo, abs=1e-3)
    assert row["r1_hi"] == pytest.approx(hi, abs=1e-3)
    with pytest.raises(ValueError, match="no column 'tau'"):
        summarise_seeds(runs, "tau")
    with pytest.raises(ValueError, match="no columns"):
        summarise_seeds(runs, "temperature", ["r5"])


# -- device and precision ------------------------------------------------------------------------------------------
def test_fp32_training_equals_a_bare_pytorch_loop_step_for_step(rng):
    """The losses kept on the device and read once per epoch are those a bare loop reads after every step, and
    the towers end with the same weights: precision="fp32" (the default) trains exactly as a textbook loop."""
    import math

    import torch.nn.functional as F

    a, b = _toy(rng, n=120)
    trainer = _trainer(epochs=3, batch_size=32, device="cpu", precision="fp32").fit(a, b, progress=False)

    tower_a, tower_b = FeatureHead(12, 8, hidden=32, seed=0), FeatureHead(12, 8, hidden=32, seed=1)
    log_scale = torch.tensor(math.log(1 / 0.07), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.AdamW([*tower_a.parameters(), *tower_b.parameters(), log_scale], lr=1e-2,
                                  weight_decay=1e-4)
    xa, xb = torch.from_numpy(a), torch.from_numpy(b)
    generator = torch.Generator().manual_seed(0)
    expected = []
    for _ in range(3):
        order, losses = torch.randperm(120, generator=generator), []
        for s in range(0, 120 - 32 + 1, 32):
            idx = order[s : s + 32]
            za, zb = F.normalize(tower_a(xa[idx]), dim=-1), F.normalize(tower_b(xb[idx]), dim=-1)
            logits = log_scale.exp() * za @ zb.T
            target = torch.arange(32)
            loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                log_scale.clamp_(0.0, math.log(100.0))
            losses.append(loss.item())  # a host sync per step: what the trainer avoids
        expected.append(float(np.mean(losses)))
    assert trainer.history_["loss"].to_list() == expected
    for ours, bare in zip(trainer.tower_a.parameters(), tower_a.parameters(), strict=True):
        assert torch.equal(ours, bare)


def test_bf16_and_fp16_autocast_train_on_the_cpu(rng):
    a, b = _toy(rng)
    fp32 = _trainer(epochs=4).fit(a, b, progress=False).history_["loss"].to_list()
    for precision in ("bf16", "fp16"):
        trainer = _trainer(epochs=4, device="cpu", precision=precision).fit(a, b, progress=False)
        losses = trainer.history_["loss"].to_list()
        assert losses[-1] < losses[0]  # it learns
        assert losses != fp32  # in lower precision: autocast ran
        if precision == "bf16":  # fp16 skips its first steps while the GradScaler finds its scale
            assert np.allclose(losses, fp32, rtol=0.05)  # ... close to the float32 run
        assert all(p.dtype == torch.float32 for p in trainer.tower_a.parameters())  # float32 weights (mixed)
    with pytest.raises(ValueError, match="precision"):
        _trainer(precision="int8")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_cuda_training_keeps_data_and_losses_on_the_device(rng):  # pragma: no cover - runs where a GPU is
    a, b = _toy(rng)
    trainer = _trainer(epochs=3, device="cuda", precision="bf16").fit(a, b, progress=False)
    assert next(trainer.tower_a.parameters()).device.type == "cuda"
    assert trainer.history_["loss"][-1] < trainer.history_["loss"][0]
