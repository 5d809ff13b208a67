# TEMP(house): remove at merge -- the embedding cache moved to workbench.store; this module only keeps
# workbench/__init__.py ("embed", "EmbeddingCache"), projection.py and reproduce.py importable until the lead
# points them at workbench.store.
from workbench.store import (  # noqa: F401  # TEMP(house): remove at merge
    CacheCorruptionWarning,
    EmbeddingCache,
    default_cache_dir,
    embed,
    items_digest,
    read_checked_array,
    write_checked_array,
)
