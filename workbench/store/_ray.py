"""A Ray Data backend for the sharded store: ``store.write(..., backend="ray")``.

The driver (the process calling :func:`workbench.store.write`) keeps every decision and every write: it verifies the
store, picks the missing shards, and records each finished shard through the same atomic writer and manifest as the
local backend. Ray only encodes: one dataset row per encoder batch of a missing shard (the very batches the local
backend would encode, so even a batch-size-sensitive encoder gives the same bits), a pool of stateful actors
(``ActorPoolStrategy``) that build the encoder once and encode rows, and the driver reassembles the outputs by
position into whole shards, in shard order.

A killed run therefore resumes exactly like a local one: Ray's own checkpointing is not used.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from workbench._cluster import ensure_local_ray
from workbench.store._encode import check_batch, join_batches

__all__ = ["EncoderActor", "encode_shards"]


class EncoderActor:
    """A Ray Data actor: builds the encoder once, then encodes pickled batches of items.

    ``source`` is the encoder itself (pickled to the actor) or, with ``factory=True``, a picklable zero-argument
    callable that builds it inside the actor (for encoders that should not travel, such as a GPU model).
    """

    def __init__(self, source: Any, modality: str, batch_size: int, factory: bool = False) -> None:
        self.encoder = source() if factory else source
        self.modality = modality
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = np.empty(len(batch["start"]), dtype=object)
        for row, payload in enumerate(batch["items"]):
            items = pickle.loads(payload)
            out = np.asarray(self.encoder.encode(self.modality, items, batch_size=self.batch_size))
            outputs[row] = pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)
        return {"start": np.asarray(batch["start"], dtype=np.int64), "out": outputs}


def _check_budget(ray: Any, actors: int, num_cpus_per_actor: float) -> None:
    total = float(ray.cluster_resources().get("CPU", 0.0))
    if actors * num_cpus_per_actor >= total:
        raise ValueError(
            f"{actors} actors x {num_cpus_per_actor} CPUs would take all {total:g} CPUs of the Ray cluster and starve "
            "the read tasks (ray#44687); use fewer actors or a fraction of a CPU each (e.g. num_cpus_per_actor=0.5)"
        )


def encode_shards(
    encoder: Any,
    items: Sequence[Any],
    modality: str,
    shards: Sequence[int],
    *,
    shard_size: int,
    batch_size: int,
    actors: int = 2,
    num_cpus_per_actor: float = 0.5,
    encoder_factory: Callable[[], Any] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Encode the given shards on a Ray Data actor pool; yield ``(shard, raw rows)`` in shard order.

    Parameters
    ----------
    encoder : Encoder
        Shipped (pickled) to every actor unless ``encoder_factory`` is given.
    items : sequence
        All items; shard ``k`` is ``items[k * shard_size : (k + 1) * shard_size]``.
    shards : sequence of int
        The shards to encode (the missing ones), ascending.
    batch_size : int
        Items per ``encoder.encode`` call; batches start at shard boundaries, as in the local backend.
    actors : int, default 2
        Size of the actor pool (``ray.data.ActorPoolStrategy(size=actors)``).
    num_cpus_per_actor : float, default 0.5
        CPUs reserved per actor; the pool must leave CPU for the read tasks (raises otherwise).
    encoder_factory : callable, optional
        A picklable zero-argument callable that builds the encoder inside each actor (once).

    When Ray is not initialised yet, a local instance is started that listens on 127.0.0.1 only
    (:func:`workbench._cluster.ensure_local_ray`); call ``ray.init(...)`` first to choose (e.g. a real cluster).
    """
    import ray
    import ray.data

    shards = sorted(shards)
    if not shards:
        return
    if actors < 1 or num_cpus_per_actor <= 0:
        raise ValueError(f"actors must be at least 1 and num_cpus_per_actor positive, got {actors}, "
                         f"{num_cpus_per_actor}")
    n = len(items)
    rows: list[dict[str, Any]] = []
    expected: dict[int, list[int]] = {}  # shard -> batch starts
    for index in shards:
        start, stop = index * shard_size, min((index + 1) * shard_size, n)
        starts = list(range(start, stop, batch_size))
        expected[index] = starts
        for a in starts:
            rows.append({"start": a, "items": pickle.dumps(list(items[a : min(a + batch_size, stop)]),
                                                            protocol=pickle.HIGHEST_PROTOCOL)})
    ensure_local_ray()
    _check_budget(ray, actors, num_cpus_per_actor)

    context = ray.data.DataContext.get_current()
    saved = (context.execution_options.preserve_order, context.enable_progress_bars)
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    try:
        dataset: Any = ray.data.from_items(rows, override_num_blocks=min(len(rows), max(2 * actors, 1) * 4))
        per_call = max(1, shard_size // batch_size)  # about one shard per actor call
        dataset = dataset.map_batches(
            EncoderActor,
            fn_constructor_args=(encoder if encoder_factory is None else encoder_factory, modality, batch_size,
                                 encoder_factory is not None),
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=num_cpus_per_actor,
            batch_size=per_call,
            batch_format="numpy",
        )
        done: dict[int, np.ndarray] = {}
        queue = iter(shards)
        current: int | None = next(queue)
        for row in dataset.iter_rows():
            done[int(row["start"])] = pickle.loads(row["out"])
            # yield every shard whose batches are all in, in shard order (preserve_order makes this immediate)
            while current is not None and all(a in done for a in expected[current]):
                chunks = [done.pop(a) for a in expected[current]]
                for a, chunk in zip(expected[current], chunks, strict=True):
                    check_batch(encoder, modality, chunk, min(a + batch_size, min((current + 1) * shard_size, n)) - a)
                yield current, join_batches(encoder, chunks)
                current = next(queue, None)
        if current is not None:
            raise RuntimeError(f"the Ray pipeline ended before shard {current} was complete")
    finally:
        context.execution_options.preserve_order, context.enable_progress_bars = saved
