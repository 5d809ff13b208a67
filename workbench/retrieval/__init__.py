"""Cross-modal retrieval metrics: exact, rank-based, chunked or streamed from an embedding store, on a CPU or a GPU.

One ranking engine (:mod:`workbench.retrieval._ranking`: the pessimistic tie rule, the counting kernels and the one
rank loop) serves every entry point: an in-memory array is a stream of rows like a store
(:mod:`workbench.retrieval._rows`), so in-memory and streamed results are computed by the same code.
:func:`evaluate_retrieval` is the one evaluator to call: it takes arrays or stores and sends stores, relevance by
id, one direction or a GPU to the streamed evaluator (``_stream``).

Modules: ``_blocks`` (score-block shapes and the matmul), ``_rows`` (arrays and stores as streams of unit rows),
``_ranking`` (the engine, devices), ``_memory`` (in-memory entry points), ``_stream`` (stores, relevance by id, one
direction), ``_stats`` (recall@k, bootstrap intervals, the paired test), ``_ledger`` (the per-query flip ledger
between two systems with an exact McNemar test; Holm adjustment, significance letters and the detectable
difference for many systems).
"""

from __future__ import annotations

from workbench.retrieval._ledger import (
    FlipLedger,
    detectable_difference,
    flip_ledger,
    holm,
    mcnemar_exact,
    ranks_from_scores,
    significance_letters,
)
from workbench.retrieval._memory import (
    evaluate_queries,
    evaluate_retrieval,
    first_relevant_ranks,
    matched_ranks,
    per_query_ranks,
)
from workbench.retrieval._ranking import (
    CUDA_ABOVE,
    DEVICES,
    DIRECTIONS,
    MAX_SCORE_BYTES,
    PARALLEL_ABOVE,
    RankResult,
    count_at_least,
    resolve_device,
)
from workbench.retrieval._stats import bootstrap_ci, paired_bootstrap_test, recall_at_k

__all__ = [
    "CUDA_ABOVE",
    "DEVICES",
    "DIRECTIONS",
    "MAX_SCORE_BYTES",
    "PARALLEL_ABOVE",
    "FlipLedger",
    "RankResult",
    "bootstrap_ci",
    "count_at_least",
    "detectable_difference",
    "evaluate_queries",
    "evaluate_retrieval",
    "first_relevant_ranks",
    "flip_ledger",
    "holm",
    "matched_ranks",
    "mcnemar_exact",
    "paired_bootstrap_test",
    "per_query_ranks",
    "ranks_from_scores",
    "recall_at_k",
    "resolve_device",
    "significance_letters",
]
