"""Curated views (`views:` in policy files): how a tenant sees a tool — under another name and description,
with arguments fixed to a value or hidden. Both are removed from the schema it lists; fixed ones are always
sent to the upstream, hidden ones never."""

from __future__ import annotations

from typing import Any

from .model import ToolView


def curated(definition: dict[str, Any], view: ToolView) -> dict[str, Any]:
    """A tool definition as the tenant's view shows it."""
    shown = dict(definition)
    if view.name:
        shown["name"] = view.name
    if view.description is not None:
        shown["description"] = view.description
    dropped = set(view.hidden_args) | set(view.fixed_args)
    schema = shown.get("inputSchema")
    if dropped and isinstance(schema, dict):
        properties = schema.get("properties")
        schema = dict(schema)
        if isinstance(properties, dict):
            schema["properties"] = {k: v for k, v in properties.items() if k not in dropped}
        if isinstance(schema.get("required"), list):
            schema["required"] = [k for k in schema["required"] if k not in dropped]
        shown["inputSchema"] = schema
    return shown


def viewed_arguments(view: ToolView | None, arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments the upstream gets: the caller's, minus what the view hides or fixes, plus the fixed ones."""
    if view is None or not (view.fixed_args or view.hidden_args):
        return arguments
    dropped = set(view.hidden_args) | set(view.fixed_args)
    return {**{k: v for k, v in arguments.items() if k not in dropped}, **view.fixed_args}
