"""The `llm.prices` table in the form Arize Phoenix's model-cost settings take (Settings > Models).

Phoenix computes a span's cost from its own price table, matching `llm.model_name` against each model's
name pattern, and ignores the `llm.cost.*` the gateway records; so the operator's prices only show in
Phoenix once they are there too. `mcp-gateway llm prices` prints them; with `--phoenix URL` it pushes them
through Phoenix's GraphQL API (creating each model, or updating the one of the same name).
"""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

from llm_bridge.config import Price

_LIST = (
    "query($after: String) { generativeModels(first: 100, after: $after) "
    "{ edges { node { id name } } pageInfo { hasNextPage endCursor } } }"
)
# Phoenix ships built-in models under the plain names (they cannot be updated), and a model an operator adds
# wins over a built-in one for the same span: ours carry this suffix.
SUFFIX = " (mcp-gateway)"
_CREATE = "mutation($input: CreateModelMutationInput!) { createModel(input: $input) { __typename } }"
_UPDATE = "mutation($input: UpdateModelMutationInput!) { updateModel(input: $input) { __typename } }"


def phoenix_models(prices: dict[str, Price]) -> list[dict[str, Any]]:
    """One Phoenix model per price entry: USD per million tokens by token type, as in Phoenix's manifest."""
    models = []
    for name, price in prices.items():
        cached = price.cached_input if price.cached_input is not None else price.input
        written = price.cache_write if price.cache_write is not None else price.input
        costs = [
            {"tokenType": "input", "kind": "PROMPT", "costPerMillionTokens": price.input},
            {"tokenType": "output", "kind": "COMPLETION", "costPerMillionTokens": price.output},
            {"tokenType": "cache_read", "kind": "PROMPT", "costPerMillionTokens": cached},
            {"tokenType": "cache_write", "kind": "PROMPT", "costPerMillionTokens": written},
        ]
        models.append({"name": name + SUFFIX, "namePattern": name_pattern(name), "costs": costs})
    return models


def name_pattern(name: str) -> str:
    """A regex for Phoenix from a price key (a model name or a glob): the name as written, or followed by a
    version suffix (`-2024-07-18`, `@20240307`), since spans carry the model id the backend answered with."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in name)
    return f"^{body}(?:[-@].+)?$" if "*" not in name else f"^{body}$"


def push(url: str, models: list[dict[str, Any]], api_key: str | None = None) -> list[str]:
    """Create or update each model in the Phoenix at `url`; what was done, one line per model."""
    existing = _existing(url, api_key)
    done = []
    for model in models:
        if model["name"] in existing:
            _graphql(url, _UPDATE, {"input": {**model, "id": existing[model["name"]]}}, api_key)
            done.append(f"updated {model['name']}")
        else:
            _graphql(url, _CREATE, {"input": model}, api_key)
            done.append(f"created {model['name']}")
    return done


def _existing(url: str, api_key: str | None) -> dict[str, str]:
    """Phoenix's models by name (its `generativeModels` connection, walked page by page)."""
    found: dict[str, str] = {}
    after: str | None = None
    while True:
        page = _graphql(url, _LIST, {"after": after}, api_key)["generativeModels"]
        found.update({edge["node"]["name"]: edge["node"]["id"] for edge in page["edges"]})
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


class PhoenixError(Exception):
    pass


def _graphql(url: str, query: str, variables: dict[str, Any], api_key: str | None) -> dict[str, Any]:
    headers = {"content-type": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(url.rstrip("/") + "/graphql", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
    except OSError as exc:
        raise PhoenixError(f"cannot reach Phoenix at {url}: {exc}") from None
    if answer.get("errors"):
        raise PhoenixError("; ".join(str(error.get("message")) for error in answer["errors"]))
    return answer.get("data") or {}
