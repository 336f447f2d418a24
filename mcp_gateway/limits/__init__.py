"""How much: request rates, concurrent calls and token/cost budgets, counted where every process sees the
same numbers. The policy decides which limits apply to a caller and target (`PolicyEngine.limits_for`);
this package counts and admits."""

from .admission import Admission, Limiter
from .counters import Counters, MemoryCounters, create_counters

__all__ = ["Admission", "Counters", "Limiter", "MemoryCounters", "create_counters"]
