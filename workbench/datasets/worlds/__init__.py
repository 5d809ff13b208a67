"""Synthetic paired worlds with known ground truth: coloured shapes (image, caption, sound) and tones (sound, caption).

Every item is generated from a few discrete attributes (plus small continuous jitter), and its caption names them,
so the right answer of every retrieval query and every probe is known exactly. Generation is seeded and
deterministic: the same seed gives identical bytes, and ``shapes(n)`` is the first ``n`` items of ``shapes(m)`` for
any ``m > n`` (the same holds for :func:`tones`). Only numpy and Pillow are used; nothing is downloaded.

- :func:`shapes`: 64 x 64 RGB images of one coloured shape on a plain light-grey background,
  ``"a small red circle at the top left"``. 6 shapes x 6 colours x 2 sizes x 5 positions = 360 distinct captions,
  assigned in shuffled balanced blocks, so ``shapes(n)`` holds all 360 once ``n >= 360``. With
  ``with_sound=True`` each item also carries a one-second mono sound derived from its attributes (colour -> pitch,
  shape -> waveform, size -> loudness, position -> envelope): three modalities for anchor (ImageBind-style) studies.
- :func:`tones`: one-second mono clips, ``"a low square-wave tone that fades out"``: 3 pitches x 4 waveforms x
  4 envelopes = 48 distinct captions.
- :class:`World`: the items (a polars frame with ``id``, ``caption``, attribute columns and integer ``*_code``
  columns usable as probe labels), the arrays, and relevance helpers: :meth:`World.caption_groups`,
  :meth:`World.relevance`, and :meth:`World.split` (random, or *compositional*: the test set holds attribute
  combinations never seen in training).

Determinism is bit for bit on one platform and numpy/Pillow version; sounds are built by inverse FFT, whose last
bits may differ across CPU instruction sets.

Examples
--------
>>> from workbench.datasets import worlds
>>> world = worlds.shapes(12, seed=0)
>>> world
World('shapes', n=12, seed=0, modalities=image+text, distinct captions=12)
>>> world.images.shape, world.images.dtype
((12, 64, 64, 3), dtype('uint8'))
>>> world.items.columns[:6]
['id', 'caption', 'shape', 'color', 'size', 'position']
"""

from workbench.datasets.worlds._shapes import COLORS, PALETTE, POSITIONS, SHAPE_WAVEFORMS, SHAPES, SIZES, shapes
from workbench.datasets.worlds._tones import ENVELOPES, PITCHES, WAVEFORMS, tones
from workbench.datasets.worlds._world import World

__all__ = [
    "COLORS",
    "ENVELOPES",
    "PALETTE",
    "PITCHES",
    "POSITIONS",
    "SHAPES",
    "SHAPE_WAVEFORMS",
    "SIZES",
    "WAVEFORMS",
    "World",
    "shapes",
    "tones",
]
