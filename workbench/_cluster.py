"""Local Ray that listens on 127.0.0.1 only: the one place where workbench starts Ray.

``backend="ray"`` (the store) and ``parallel="ray"`` (UMAP at scale) call :func:`ensure_local_ray` before they use
Ray. A leaf module: it imports nothing of the package, and Ray only when called.
"""

from __future__ import annotations

import contextlib
import importlib
import ipaddress
import os
from collections.abc import Iterator
from typing import Any

__all__ = ["LOOPBACK", "ensure_local_ray"]

LOOPBACK = "127.0.0.1"


def ensure_local_ray() -> None:
    """Start a local Ray instance bound to 127.0.0.1 unless Ray is already initialised.

    When this process has already called ``ray.init`` (or an earlier workbench call started Ray), nothing changes:
    the user chose. Otherwise a new local instance is started with ``ray.init(address="local",
    include_dashboard=False, _node_ip_address="127.0.0.1")``: the GCS, the raylet, the object manager and the
    workers then listen on the loopback interface only, and no dashboard is served, so nothing of it is reachable
    from the network. (Ray reads ``127.0.0.1`` as "this machine's reachable address" unless it runs without
    cluster support, which is what is asked for while it starts.) A newly started Ray that is not on the loopback
    interface after all (another Ray version) is shut down again with a RuntimeError.

    To use a real cluster instead, connect to it before calling workbench::

        import ray
        ray.init(address="auto")             # the cluster this machine joined with `ray start`
        ray.init(address="ray://head:10001")  # or a remote head node through Ray Client

    or set ``RAY_ADDRESS`` (e.g. ``RAY_ADDRESS=auto`` or ``RAY_ADDRESS=10.0.0.5:6379``) in the environment: then
    this function calls plain ``ray.init()``, which connects there. Securing such a cluster (token authentication,
    TLS, firewalls) is the cluster's business; see https://docs.ray.io/en/latest/ray-security/.
    """
    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS", "") not in ("", "local"):
        ray.init()  # the user named a cluster in the environment
        return
    with _without_cluster_support():
        ray.init(address="local", include_dashboard=False, _node_ip_address=LOOPBACK)
    node_ip = _node_ip(ray)
    if node_ip is not None and not ipaddress.ip_address(node_ip).is_loopback:
        ray.shutdown()
        raise RuntimeError(
            f"the local Ray instance started on {node_ip}, not on {LOOPBACK}: this Ray version ignores the request, "
            "and its services would be reachable from the network; start Ray yourself first (ray.init(...), where "
            "you decide what it listens on) and call workbench again"
        )


def _node_ip(ray: Any) -> str | None:
    util = getattr(ray, "util", None)
    get = getattr(util, "get_node_ip_address", None)
    return None if get is None else str(get())


@contextlib.contextmanager
def _without_cluster_support() -> Iterator[None]:
    """Ray resolves ``_node_ip_address="127.0.0.1"`` to the machine's routable address unless
    ``ray_constants.ENABLE_RAY_CLUSTER`` is false (its setting on Windows and macOS): false while Ray starts."""
    try:
        constants: Any = importlib.import_module("ray._private.ray_constants")
    except ImportError:  # another Ray layout: the address check after ray.init decides
        yield
        return
    saved = getattr(constants, "ENABLE_RAY_CLUSTER", None)
    if saved is None:
        yield
        return
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = saved
