"""Configuration: the `gateway.yaml` model and its loader."""

from .load import ConfigError, load_config, parse_config
from .model import (
    GatewayConfig,
    HttpUpstream,
    NamingConfig,
    SealingKey,
    ServerConfig,
    SseUpstream,
    StateConfig,
    StdioUpstream,
    ToolCuration,
    Upstream,
)

__all__ = [
    "ConfigError",
    "GatewayConfig",
    "HttpUpstream",
    "NamingConfig",
    "SealingKey",
    "ServerConfig",
    "SseUpstream",
    "StateConfig",
    "StdioUpstream",
    "ToolCuration",
    "Upstream",
    "load_config",
    "parse_config",
]
