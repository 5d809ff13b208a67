"""The input pipeline every encoder shares: items prepared in parallel worker processes, batches in input order.

:class:`BatchPipeline` cuts ``items`` into batches of ``batch_size`` and runs a picklable ``prepare(batch, start)``
(decode, resize, crop, feature extraction: everything before the model) on each, in ``num_workers`` worker
processes of a ``torch.utils.data.DataLoader`` (``num_workers=0``: in the calling thread). While the model runs
on one batch, the workers prepare the next ones (``prefetch`` batches per worker); batches arrive in input order;
with a CUDA encoder they arrive in pinned memory, so the copy to the GPU can overlap the compute.

The same ``prepare`` runs either way, one batch at a time, so the results are bit for bit those of
``num_workers=0``. An exception a worker raises (a bad item's ValueError naming its index) is raised again in the
calling process as it was -- the same type and message, not DataLoader's wrapper. Leaving the ``with`` block for
any reason (an error, Ctrl-C in the consumer) shuts the workers down before the exception propagates.

:func:`run_encoder` is the loop the encoders run: prepare in the pipeline, ``forward`` on the device, keep the
embeddings on the device (no host round trip per batch) and copy them to the host in a few large blocks.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench._params import check_int
from workbench._threads import available_cores
from workbench.encoders.errors import short_error
from workbench.encoders.media import load_image

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["BatchPipeline", "DeviceImageBatch", "check_num_workers", "default_num_workers", "run_encoder"]

#: Most worker processes the default starts (beyond this, decoding rarely keeps up a single model any better).
MAX_DEFAULT_WORKERS = 8
#: Embeddings kept on the GPU before one copy to the host (bytes).
_FLUSH_BYTES = 256 * 2**20


def default_num_workers() -> int:
    """The worker processes an encoder starts by default: one per available core (at most 8), none on one core.

    Examples
    --------
    >>> 0 <= default_num_workers() <= MAX_DEFAULT_WORKERS
    True
    """
    cores = available_cores()
    return 0 if cores <= 1 else min(cores, MAX_DEFAULT_WORKERS)


def check_num_workers(num_workers: Any) -> int:
    """``num_workers`` as an int >= 0 (``None``: :func:`default_num_workers`), else a named error.

    Examples
    --------
    >>> check_num_workers(2)
    2
    >>> check_num_workers(-1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    workbench._params.InvalidParameterError: num_workers must be an integer >= 0, got -1
    """
    if num_workers is None:
        return default_num_workers()
    return check_int(num_workers, "num_workers", low=0)


class _Failure:
    """An exception raised while preparing a batch, carried back from a worker to be raised there as it was."""

    def __init__(self, error: BaseException) -> None:
        try:
            pickle.loads(pickle.dumps(error))
        except Exception:  # an exception that cannot travel: its type name and message do
            error = RuntimeError(f"{type(error).__name__}: {error}")
        self.error = error


class _Batches:
    """A map-style dataset whose k-th element is the prepared k-th batch (or the _Failure that preparing it met)."""

    def __init__(self, items: Sequence[Any], batch_size: int, prepare: Callable[[list[Any], int], Any]) -> None:
        self.items, self.batch_size, self.prepare = items, batch_size, prepare

    def __len__(self) -> int:
        return (len(self.items) + self.batch_size - 1) // self.batch_size

    def __getitem__(self, k: int) -> Any:
        start = k * self.batch_size
        try:
            return self.prepare(list(self.items[start : start + self.batch_size]), start)
        except Exception as exc:
            return _Failure(exc)


class BatchPipeline:
    """Prepared batches of ``items``, in order, from worker processes; a context manager that always stops them.

    Parameters
    ----------
    items : sequence
        The items (sliced per batch; with workers, the sequence is shared with them by ``fork`` or pickled).
    batch_size : int
        Items per batch.
    prepare : callable
        ``prepare(batch_items, start)`` -> the model input of one batch (tensors, arrays, tuples of them). It must
        be picklable (a module-level function or an object of one) where workers are spawned rather than forked.
    num_workers : int, default 0
        Worker processes; 0 prepares in the calling thread. A single batch is always prepared in this thread.
    pin_memory : bool, default False
        Put the prepared tensors in page-locked memory (for a fast, asynchronous copy to a CUDA device).
    prefetch : int, default 2
        Batches each worker prepares ahead.

    Examples
    --------
    >>> def double(batch, start):
    ...     return np.asarray(batch) * 2
    >>> with BatchPipeline(list(range(5)), 2, double, num_workers=0) as batches:
    ...     [(start, out.tolist()) for start, out in batches]
    [(0, [0, 2]), (2, [4, 6]), (4, [8])]
    """

    def __init__(self, items: Sequence[Any], batch_size: int, prepare: Callable[[list[Any], int], Any], *,
                 num_workers: int = 0, pin_memory: bool = False, prefetch: int = 2) -> None:
        self.dataset = _Batches(items, check_int(batch_size, "batch_size"), prepare)
        n_batches = len(self.dataset)
        self.num_workers = min(check_int(num_workers, "num_workers", low=0), n_batches) if n_batches > 1 else 0
        self.pin_memory = bool(pin_memory)
        self.prefetch = check_int(prefetch, "prefetch")
        self._iterator: Any = None

    def __enter__(self) -> Iterator[tuple[int, Any]]:
        return self._batches()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker processes (and the pinning thread) now; safe to call twice."""
        iterator, self._iterator = self._iterator, None
        if iterator is not None:
            shutdown = getattr(iterator, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()

    def _batches(self) -> Iterator[tuple[int, Any]]:
        size = self.dataset.batch_size
        if self.num_workers == 0:
            for k in range(len(self.dataset)):
                out = self.dataset[k]
                if isinstance(out, _Failure):
                    raise out.error
                yield k * size, _pinned(out) if self.pin_memory else out
            return
        from torch.utils.data import DataLoader

        with warnings.catch_warnings():  # more workers than cores is the user's call, not a warning per encode
            warnings.filterwarnings("ignore", message="This DataLoader will create", category=UserWarning)
            dataset: Any = self.dataset  # a map-style dataset (__len__, __getitem__), as DataLoader takes
            loader = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=self.num_workers,
                                pin_memory=self.pin_memory, prefetch_factor=self.prefetch, persistent_workers=False)
            self._iterator = iter(loader)
        try:
            for k in range(len(self.dataset)):
                out = next(self._iterator)
                if isinstance(out, _Failure):
                    raise out.error
                yield k * size, out
        finally:
            self.close()


def _pinned(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.pin_memory()
    if isinstance(value, tuple | list):
        return type(value)(_pinned(v) for v in value)
    return value


def run_encoder(
    items: Sequence[Any],
    batch_size: int,
    prepare: Callable[[list[Any], int], Any],
    forward: Callable[[Any, int], torch.Tensor],
    *,
    device: torch.device,
    num_workers: int,
    normalize: bool = True,
) -> np.ndarray:
    """Embed ``items``: ``prepare`` in a :class:`BatchPipeline`, ``forward(prepared, start)`` on ``device``.

    Every batch's output is turned to float32 (and with ``normalize`` divided by its row norms,
    ``torch.nn.functional.normalize``) on the device and kept there; the rows are copied to the host in blocks of
    at most 256 MiB, so a GPU is not stopped once per batch. Returns an (N x D) float32 array in input order.

    Examples
    --------
    >>> import torch
    >>> def prepare(batch, start):
    ...     return torch.as_tensor(np.asarray(batch, dtype=np.float32))
    >>> run_encoder([[3.0, 4.0], [0.0, 2.0]], 1, prepare, lambda x, start: x, device=torch.device("cpu"),
    ...             num_workers=0)
    array([[0.6, 0.8],
           [0. , 1. ]], dtype=float32)
    """
    import torch

    blocks: list[np.ndarray] = []
    held: list[torch.Tensor] = []
    held_bytes = 0
    on_gpu = torch.device(device).type == "cuda"
    with BatchPipeline(items, batch_size, prepare, num_workers=num_workers, pin_memory=on_gpu) as batches, \
            torch.inference_mode():
        for start, prepared in batches:
            emb = forward(prepared, start).float()
            if normalize:
                emb = torch.nn.functional.normalize(emb, dim=-1)
            if not on_gpu:
                blocks.append(emb.cpu().numpy())
                continue
            held.append(emb)
            held_bytes += emb.numel() * 4
            if held_bytes >= _FLUSH_BYTES:
                blocks.append(torch.cat(held).cpu().numpy())
                held, held_bytes = [], 0
        if held:
            blocks.append(torch.cat(held).cpu().numpy())
    return np.concatenate(blocks).astype(np.float32, copy=False)


_JPEG_MAGIC = b"\xff\xd8\xff"


class DeviceImageBatch:
    """Images decoded and transformed on the encoder's device (``image_decode="device"``; opt-in, not PIL's bits).

    The workers only read the encoded bytes of JPEG items (file paths and bytes); other items (PNG, PIL images,
    arrays) are read there with :func:`~workbench.encoders.media.load_image` as uint8 pixels. :meth:`finish` then
    decodes the JPEGs of a batch at once with ``torchvision.io.decode_jpeg(device=...)`` (nvJPEG on a GPU,
    libjpeg-turbo on the CPU) and runs the transform's Resize / CenterCrop steps on the device with torchvision's
    tensor kernels, then ToTensor and Normalize -- the preprocessing of the transform without a PIL image.

    Raises ValueError when the transform has a step without a tensor form (use ``image_decode="pil"``).
    """

    def __init__(self, preprocess: Any) -> None:
        import torch
        from torchvision import transforms as T

        steps = list(getattr(preprocess, "transforms", []))
        cut = next((i for i, step in enumerate(steps) if isinstance(step, T.ToTensor)), None)
        tail = steps[cut + 1 :] if cut is not None else []
        if cut is None or len(tail) > 1 or (tail and not isinstance(tail[0], T.Normalize)):
            raise ValueError(f"image_decode='device' needs a transform ending in ToTensor (and Normalize), got "
                             f"{preprocess!r}; use image_decode='pil'")
        self.steps = []
        for step in steps[:cut]:
            if isinstance(step, T.Resize | T.CenterCrop):
                self.steps.append(step)
            elif not _is_rgb_step(step):  # images are RGB already
                raise ValueError(f"image_decode='device' cannot run the transform step {step!r} on tensors; use "
                                 "image_decode='pil'")
        mean = tail[0].mean if tail else (0.0, 0.0, 0.0)
        std = tail[0].std if tail else (1.0, 1.0, 1.0)
        self.mean = torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def __call__(self, items: Sequence[Any], start: int) -> list[tuple[str, Any]]:
        import torch

        out: list[tuple[str, Any]] = []
        for i, item in enumerate(items):
            data = _encoded_bytes(item)
            if data is not None and data[:3] == _JPEG_MAGIC:
                out.append(("jpeg", torch.frombuffer(bytearray(data), dtype=torch.uint8)))
            else:  # not a JPEG (or unreadable: load_image names the item and the problem)
                out.append(("pixels", torch.from_numpy(np.asarray(load_image(item, start + i)).copy())))
        return out

    def finish(self, prepared: list[tuple[str, Any]], start: int, device: Any) -> torch.Tensor:
        """The model input (B x C x H x W float32 on ``device``) of a batch :meth:`__call__` prepared."""
        import torch
        from torchvision.io import ImageReadMode, decode_jpeg

        jpegs = [i for i, (kind, _) in enumerate(prepared) if kind == "jpeg"]
        decoded: dict[int, torch.Tensor] = {}
        if jpegs:
            data = [prepared[i][1] for i in jpegs]
            try:
                decoded = dict(zip(jpegs, decode_jpeg(data, mode=ImageReadMode.RGB, device=device), strict=True))
            except RuntimeError:  # find the item that fails, and name it
                for i, one in zip(jpegs, data, strict=True):
                    try:
                        decoded[i] = decode_jpeg(one, mode=ImageReadMode.RGB, device=device)
                    except RuntimeError as exc:
                        raise ValueError(f"image item {start + i} (JPEG) cannot be decoded: "
                                         f"{short_error(exc)}") from None
        images = []
        for i, (kind, value) in enumerate(prepared):
            image = decoded[i] if kind == "jpeg" else value.to(device, non_blocking=True).permute(2, 0, 1)
            for step in self.steps:
                image = step(image)
            images.append(image)
        batch = torch.stack(images).to(torch.float32).div_(255)
        return batch.sub_(self.mean.to(batch.device)).div_(self.std.to(batch.device))


def _is_rgb_step(step: Any) -> bool:
    """open_clip's convert-to-RGB steps (``MaybeConvertMode``, older ``_convert_to_rgb``)."""
    return type(step).__name__ == "MaybeConvertMode" or getattr(step, "__name__", "") == "_convert_to_rgb"


def _encoded_bytes(item: Any) -> bytes | None:
    """The bytes of a file path or bytes item; None for other items and for paths that cannot be read."""
    import os

    if isinstance(item, bytes | bytearray | memoryview):
        return bytes(item)
    if isinstance(item, str | os.PathLike):
        try:
            with open(item, "rb") as handle:
                return handle.read()
        except OSError:
            return None
    return None
