"""Token counts and their cost: read from canonical usage objects, priced from the config's table."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from .config import Price


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0  # everything the model read, cached or not
    output_tokens: int = 0  # everything it wrote, reasoning included
    cached_tokens: int = 0  # of input_tokens, read from the provider's cache
    cache_write_tokens: int = 0  # of input_tokens, written to the provider's cache
    reasoning_tokens: int = 0  # of output_tokens

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @classmethod
    def of(cls, usage: Any) -> Usage | None:
        """From a canonical (OpenAI-shaped) usage object; also reads embeddings usage (no completion tokens)."""
        if not isinstance(usage, dict):
            return None
        prompt = usage.get("prompt_tokens") or 0
        details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        return cls(
            input_tokens=int(prompt),
            output_tokens=int(usage.get("completion_tokens") or 0),
            cached_tokens=int(details.get("cached_tokens") or 0),
            cache_write_tokens=int(details.get("cache_creation_tokens") or 0),
            reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
        )


class PriceTable:
    """Model id -> price; exact ids first, then globs in the order given."""

    def __init__(self, prices: dict[str, Price]) -> None:
        self._exact = {name: price for name, price in prices.items() if not _is_glob(name)}
        self._globs = [(name, price) for name, price in prices.items() if _is_glob(name)]
        self._found: dict[str, Price | None] = {}

    def price(self, *models: str | None) -> Price | None:
        for model in models:
            if not model:
                continue
            if model not in self._found:
                self._found[model] = self._lookup(model)
            if self._found[model] is not None:
                return self._found[model]
        return None

    def cost(self, usage: Usage, *models: str | None) -> float | None:
        """USD for this usage, or None when no price is configured for any of the models."""
        price = self.price(*models)
        if price is None:
            return None
        cached = price.cached_input if price.cached_input is not None else price.input
        write = price.cache_write if price.cache_write is not None else price.input
        plain_input = max(0, usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens)
        micro = (
            plain_input * price.input
            + usage.cached_tokens * cached
            + usage.cache_write_tokens * write
            + usage.output_tokens * price.output
        )
        return micro / 1_000_000

    def _lookup(self, model: str) -> Price | None:
        if model in self._exact:
            return self._exact[model]
        for pattern, price in self._globs:
            if fnmatch.fnmatchcase(model, pattern):
                return price
        return None


def _is_glob(name: str) -> bool:
    return any(ch in name for ch in "*?[")
