"""The Ray transform of a sampled UMAP gives the bits of the serial one (pynndescent's search path, as at scale)."""

from __future__ import annotations

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from test_projection_scale import clustered_sphere  # noqa: E402

from workbench.projection import _scale as projection_scale  # noqa: E402
from workbench.projection import clear_memory_cache, project  # noqa: E402

pytestmark = [
    pytest.mark.slow,  # the model compiles its search in the driver and in each actor (20-75 s each)
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*"),
    pytest.mark.filterwarnings("ignore::FutureWarning:ray.*"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),  # Ray's sockets to its local cluster
]


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_ray_transform_equals_the_serial_one(ray_cluster, monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path))
    clear_memory_cache()
    x, _ = clustered_sphere(1500)
    # force the approximate index: the path of every sample >= 4,096 rows (a threaded, seeded graph search)
    options = {"sample": 500, "batch_size": 300, "cache": False, "progress": False,
               "force_approximation_algorithm": True}
    serial = project(x, "umap", parallel="serial", **options)
    seen = []
    real = projection_scale.transform_on_ray
    monkeypatch.setattr(projection_scale, "transform_on_ray", lambda *a, **k: seen.append(k) or real(*a, **k))
    on_ray = project(x, "umap", parallel="ray", workers=2, **options)
    assert len(seen) == 1  # it did run on Ray
    np.testing.assert_array_equal(on_ray, serial)
    assert np.isfinite(serial).all()
    # "auto" with Ray initialised but only 1,000 rows to transform stays in this process
    monkeypatch.setattr(projection_scale, "transform_on_ray", lambda *a, **k: pytest.fail("used Ray"))
    np.testing.assert_array_equal(project(x, "umap", parallel="auto", **options), serial)
