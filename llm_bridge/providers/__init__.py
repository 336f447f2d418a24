"""One module per provider family; `create_provider` picks the class a backend's config names."""

from __future__ import annotations

import importlib

from ..config import Backend
from .base import Provider

_CLASSES = {
    "openai": ("openai", "OpenAIProvider"),
    "azure": ("openai", "AzureOpenAIProvider"),
    "anthropic": ("anthropic", "AnthropicProvider"),
    "bedrock": ("bedrock", "BedrockProvider"),
    "gemini": ("gemini", "GeminiProvider"),
    "vertex": ("gemini", "VertexProvider"),
}


def create_provider(name: str, config: Backend) -> Provider:
    module, cls = _CLASSES[config.provider]
    # Imported on demand: a gateway with only OpenAI-compatible backends never loads the other translators.
    provider_class: type[Provider] = getattr(importlib.import_module(f"{__name__}.{module}"), cls)
    return provider_class(name, config)
