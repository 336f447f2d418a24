"""How the gateway hosts the LLM bridge: the bridge's hooks (authentication, policy, limits, budgets,
recording) implemented with the gateway's own parts."""

from .hooks import GatewayHooks

__all__ = ["GatewayHooks"]
