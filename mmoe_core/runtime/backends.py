"""Where stored runs train: `local` (this machine: the CLI in-process, the app's JobQueue in worker processes)
or `ray` (tasks on a Ray cluster that stream their records back into this machine's RunStore).

    python -m mmoe_core sweep --correlations 0.5,0.9,1.0 --seeds 32 --backend ray --ray-address head:6379
    MMOE_BACKEND=ray MMOE_RAY_ADDRESS=head:6379 streamlit run app.py

Ray is an optional extra (`pip install -e ".[ray]"`): nothing here imports it, and the local
path never needs it. `mmoe_core.runtime.ray_backend` (driver side) and `mmoe_core.runtime.ray_remote` (inside the task)
hold everything that does (docs/SCALING.md explains the costs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import settings
from ..config import RunConfig
from ..runs import RunStore

if TYPE_CHECKING:
    from .ray_backend import RayLauncher

BACKENDS = ("local", "ray")
INSTALL_HINT = "install it with `pip install ray==2.60.0` (the `ray` extra) or choose --backend local"


def resolve_backend(name: str | None = None) -> str:
    """An explicit name wins, then $MMOE_BACKEND, then `local`; anything else is a clear error."""
    chosen = (name or settings.get("MMOE_BACKEND") or "local").strip().lower()
    if chosen not in BACKENDS:
        raise ValueError(
            f"backend={chosen!r} is unknown; choose one of {', '.join(BACKENDS)} "
            "(flag --backend or environment variable MMOE_BACKEND)"
        )
    if chosen == "ray":
        require_ray()
    return chosen


def ray_address(address: str | None = None) -> str | None:
    """--ray-address, else $MMOE_RAY_ADDRESS; None starts a Ray instance on this machine."""
    return address or settings.get("MMOE_RAY_ADDRESS") or None


def require_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ValueError(
            f"the ray backend needs the optional package `ray`, which is not installed; {INSTALL_HINT}"
        ) from None


def launcher(store: RunStore, address: str | None = None) -> RayLauncher:
    """Connect to Ray (or start it) and return the driver-side launcher that the CLI and JobQueue share."""
    require_ray()
    from .ray_backend import RayLauncher

    return RayLauncher(store, address=ray_address(address))


def run_on_ray(
    store: RunStore,
    configs: list[RunConfig],
    label: str = "",
    address: str | None = None,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> list[tuple[str, dict]]:
    """Train every config as one Ray task (all its seeds batched inside), all submitted at once; the cluster
    runs as many side by side as it has slots. Returns (run_id, summary) in config order; raises ValueError
    naming every run that failed, after the others have finished."""
    ray_launcher = launcher(store, address)
    try:
        return ray_launcher.run_all(configs, label=label, on_progress=on_progress)
    finally:
        ray_launcher.close()
