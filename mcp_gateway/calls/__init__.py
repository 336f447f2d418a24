"""The plain data every layer shares: what a client asked (`Call`), who the client is (`ClientContext`),
where a call was routed (`Target`) and what happened (`Result`). No behaviour, no imports of other layers
beyond the wire constants, so the fronts, the pipeline and telemetry can all depend on it."""

from .call import LOCAL_PRINCIPAL, Call, CallSink, ClientContext
from .result import Result, ScopeRefusal
from .target import Target

__all__ = ["LOCAL_PRINCIPAL", "Call", "CallSink", "ClientContext", "Result", "ScopeRefusal", "Target"]
