"""The steps every call passes, outermost first (docs/ARCHITECTURE.md, "The pipeline")."""

from .limits import LimitsStep
from .policy import PolicyStep
from .routing import RouteStep
from .scopes import ScopesStep
from .telemetry import TelemetryStep

__all__ = ["LimitsStep", "PolicyStep", "RouteStep", "ScopesStep", "TelemetryStep"]
