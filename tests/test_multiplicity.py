"""Many systems at once: Holm's adjustment against its step-down definition, ranx-style significance letters
against brute-force pairwise tests, the detectable difference against Connor's sample-size formula and a power
simulation, and compare_correctors' new columns and their superscripts in the LaTeX and Markdown tables."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom, binomtest, norm

import workbench
from workbench.compare import compare_correctors, split_pairs
from workbench.correct import MeanCenter
from workbench.correct.rerankers import NNN
from workbench.export import to_latex, to_markdown
from workbench.retrieval import (
    detectable_difference,
    first_relevant_ranks,
    holm,
    mcnemar_exact,
    significance_letters,
)


@settings(max_examples=60, deadline=None)
@given(p=st.lists(st.floats(0, 1), min_size=1, max_size=12), alpha=st.sampled_from([0.01, 0.05, 0.1]))
def test_holm_rejects_exactly_what_the_step_down_procedure_rejects(p, alpha):
    p = np.array(p)
    m = len(p)
    # Holm's procedure: walk the sorted p-values; reject while p_(i) <= alpha / (m - i); stop at the first failure
    rejected = np.zeros(m, dtype=bool)
    for i, j in enumerate(np.argsort(p, kind="stable")):
        if p[j] > alpha / (m - i):
            break
        rejected[j] = True
    assert ((holm(p) <= alpha) == rejected).all()
    assert (holm(p) >= p - 1e-15).all() and (holm(p) <= 1).all()


def test_holm_by_hand_and_with_missing_values():
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4*0.005, 3*0.01, max(2*0.03, .), max(1*0.04, 0.06)
    assert holm([0.01, 0.04, 0.03, 0.005]).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    out = holm([np.nan, 0.02, 0.04])
    assert np.isnan(out[0]) and out[1:].tolist() == pytest.approx([0.04, 0.04])


def test_significance_letters_equal_brute_force_pairwise_tests():
    rng = np.random.default_rng(0)
    base = rng.random(300) < 0.5
    systems = np.stack([base, base | (rng.random(300) < 0.2), base & (rng.random(300) < 0.8),
                        np.where(rng.random(300) < 0.05, ~base, base)])
    pairs = list(itertools.combinations(range(4), 2))
    raw = [binomtest(int(np.sum(systems[i] & ~systems[j])),
                     int(np.sum(systems[i] != systems[j]))).pvalue for i, j in pairs]
    order = np.argsort(raw)
    adjusted = np.empty(len(raw))
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (len(raw) - rank) * raw[idx]))
        adjusted[idx] = running
    expected = [""] * 4
    for (i, j), q in zip(pairs, adjusted, strict=True):
        if q < 0.05:
            win, lose = (i, j) if systems[i].sum() > systems[j].sum() else (j, i)
            expected[win] += "abcd"[lose]
    assert significance_letters(systems) == ["".join(sorted(e)) for e in expected]
    assert significance_letters(systems)[1] == "acd"  # the one that only gains beats every other


def test_detectable_difference_solves_connors_formula_and_has_the_power():
    n, psi = 250, 0.12
    delta = detectable_difference(n, psi)
    za, zb = norm.ppf(0.975), norm.ppf(0.8)
    assert (za * np.sqrt(psi) + zb * np.sqrt(psi - delta**2)) ** 2 / delta**2 == pytest.approx(n)
    # simulate McNemar's test at that difference: discordant queries ~ Bin(n, psi), gains among them with
    # probability (psi + delta) / (2 psi); the exact test should reject about 80% of the time
    rng = np.random.default_rng(0)
    d = rng.binomial(n, psi, size=4000)
    gains = rng.binomial(d, (psi + delta) / (2 * psi))
    p = np.minimum(1.0, 2 * binom.cdf(np.minimum(gains, d - gains), d, 0.5))
    assert 0.72 < np.mean(p < 0.05) < 0.85  # the exact test is a little conservative
    assert detectable_difference(10_000, psi) < delta < detectable_difference(50, psi)
    with pytest.raises(ValueError, match="discordance"):
        detectable_difference(100, 0.0)


def test_compare_correctors_adds_tests_letters_and_power_note():
    p = workbench.datasets.load("liang2022/clip")
    table = compare_correctors(p, {"center": MeanCenter(), "nnn": NNN(k=16)}, n_resamples=20, probe=False,
                               progress=False)
    train, test = split_pairs(p, 0.5, seed=0)
    assert table["system"].to_list() == ["a", "b", "c"]
    base = first_relevant_ranks(test.a.vectors, test.b.vectors, test.pairs) <= 1
    a2, b2 = MeanCenter().fit(*train.matched()).transform(test.a.vectors, test.b.vectors)
    centred = first_relevant_ranks(a2, b2, test.pairs) <= 1
    expected_p = mcnemar_exact(int(np.sum(centred & ~base)), int(np.sum(base & ~centred)))
    row = table.row(1, named=True)
    assert row["image_to_text_R@1_p"] == pytest.approx(expected_p)
    assert table["image_to_text_R@1_p_holm"].to_list()[1:] == pytest.approx(
        holm(table["image_to_text_R@1_p"].to_list()[1:]).tolist())
    assert row["image_to_text_R@1_mde"] == pytest.approx(detectable_difference(len(base), np.mean(centred != base)))
    assert table.row(0, named=True)["image_to_text_R@1_p"] is None
    latex, markdown = to_latex(table.select("corrector", "text_to_image_R@1", "text_to_image_R@1_lo",
                                            "text_to_image_R@1_hi", "text_to_image_R@1_sig")), to_markdown(table)
    letters = table["text_to_image_R@1_sig"].to_list()
    assert any(letters)  # NNN beats MeanCenter on text -> image R@1 here
    assert "text_to_image_R@1_sig" not in latex.replace("\\_", "_") and "_sig" not in markdown
    for word in filter(None, letters):
        assert f"^{{\\mathrm{{{word}}}}}$" in latex and f"<sup>{word}</sup>" in markdown
    plain = compare_correctors(p, [MeanCenter()], n_resamples=20, probe=False, progress=False, significance=False)
    assert "system" not in plain.columns and not any(c.endswith("_p") for c in plain.columns)
