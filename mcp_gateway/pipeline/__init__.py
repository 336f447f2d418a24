"""The message pipeline: a `Call` in, a `Result` out, through one chain of steps for every front and era.

    telemetry -> route -> policy -> scopes -> limits -> [method handler -> upstream]

See docs/ARCHITECTURE.md, "The pipeline", for each step and for where a new one goes.
"""

from .chain import Next, Step
from .exchange import Exchange
from .pipeline import Pipeline

__all__ = ["Exchange", "Next", "Pipeline", "Step"]
