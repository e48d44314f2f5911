"""mmoe_core: the UI-free library behind MMoE Playground (data, mixture models, trainer, run store, jobs)."""

from .config import MODEL_KINDS, RunConfig

__all__ = ["MODEL_KINDS", "RunConfig"]
__version__ = "0.1.0"
