"""May they: policy files compiled into one engine that decides listing and use alike."""

from .current import CurrentPolicy
from .engine import Decision, PolicyEngine
from .load import PolicyError, load_policies

__all__ = ["CurrentPolicy", "Decision", "PolicyEngine", "PolicyError", "load_policies"]
