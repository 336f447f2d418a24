"""How upstream names and URIs become the gateway's exposed names, and back.

Tool and prompt names: `<prefix><sep><name>`, sanitised to `[A-Za-z0-9_.-]` and shortened
deterministically (head + hash) to the configured maximum. The reverse direction is a lookup in the
catalog, so shortening does not need to be reversible.

Resource URIs keep their scheme (clients key on `ui://`, `file://` ...) and gain the prefix right
after it: `test://static` -> `test://everything__static`, `urn:x` -> `urn:everything__x`. That form is
reversible from the URI alone, which routes `resources/read` of URIs expanded from templates.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(//)?")


@dataclass(frozen=True, slots=True)
class Namer:
    """The naming rules of one upstream."""

    prefix: str | None  # None: names are exposed unprefixed
    separator: str = "__"
    max_length: int = 64

    def name(self, name: str) -> str:
        exposed = f"{self.prefix}{self.separator}{name}" if self.prefix else name
        return shorten(exposed, self.max_length)

    def uri(self, uri: str) -> str:
        if not self.prefix:
            return uri
        match = _SCHEME.match(uri)
        if match is None:
            return f"{self.prefix}{self.separator}{uri}"
        head = match.group(0)
        return f"{head}{self.prefix}{self.separator}{uri[len(head) :]}"

    def original_uri(self, exposed: str) -> str | None:
        """The upstream URI for an exposed one, or None when it does not carry this upstream's prefix."""
        if not self.prefix:
            return exposed
        marker = f"{self.prefix}{self.separator}"
        match = _SCHEME.match(exposed)
        head = match.group(0) if match else ""
        if exposed.startswith(marker, len(head)):
            return head + exposed[len(head) + len(marker) :]
        return None


def shorten(name: str, max_length: int) -> str:
    """A valid MCP tool name of at most `max_length` characters, stable for the same input.

    Names that are already valid and short pass unchanged. Others keep a readable head and gain a hash
    of the full name, so two names differing only past the cut (or in invalid characters) stay distinct.
    """
    clean = _INVALID_NAME_CHARS.sub("_", name) or "_"
    if clean == name and len(name) <= max_length:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{clean[: max_length - 9]}_{digest}"


def uri_scheme_prefix(uri: str) -> str:
    match = _SCHEME.match(uri)
    return match.group(0) if match else ""
