"""One spelling per resource URI, so a policy glob and an upstream agree on what a URI names.

`canonical_uri` applies RFC 3986 §6.2.2 syntax-based normalisation: the scheme in lower case (and the host,
for schemes whose host is a DNS name), percent-encoding triplets in upper case, percent-encoded unreserved
characters decoded, and dot segments removed from a hierarchical path (§5.2.4). What normalisation cannot
make unambiguous is refused: a path segment that is a dot segment or holds a `/` or `\\` only once
percent-decoded (an upstream that decodes before resolving would walk out of the path the policy
allowed), a raw backslash, control characters and NUL.
"""

from __future__ import annotations

import re

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_TRIPLET = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_TRIPLET = re.compile(r"%(?![0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_DNS_HOSTS = frozenset({"http", "https", "ws", "wss", "ftp"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")
_MAX_LENGTH = 8192


class NonCanonicalUri(ValueError):
    """A URI whose meaning depends on how the receiver decodes it."""


def canonical_uri(uri: str) -> str:
    """The canonical spelling of `uri`; raises `NonCanonicalUri` for what cannot be made unambiguous."""
    if len(uri) > _MAX_LENGTH:
        raise NonCanonicalUri(f"resource URI longer than {_MAX_LENGTH} characters")
    if _CONTROL.search(uri):
        raise NonCanonicalUri("resource URI contains a backslash or a control character")
    if _BAD_TRIPLET.search(uri):
        raise NonCanonicalUri("resource URI has a '%' that is not a percent-encoded byte")
    match = _SCHEME.match(uri)
    if match is None:
        return _normalise_path(_decode_unreserved(uri), hierarchical=uri.startswith("/"))
    scheme = match.group(1).lower()
    rest = _decode_unreserved(uri[match.end() :])
    if not rest.startswith("//"):
        return f"{scheme}:{_normalise_path(rest, hierarchical=rest.startswith('/'))}"
    authority, slash, path = rest[2:].partition("/")
    query = ""
    for mark in ("?", "#"):  # an authority may be followed directly by a query or fragment
        if not slash and mark in authority:
            authority, _, tail = authority.partition(mark)
            query = mark + tail
    if scheme in _DNS_HOSTS:
        authority = authority.lower()
    return f"{scheme}://{authority}{_normalise_path(slash + path, hierarchical=True) if slash else ''}{query}"


def _decode_unreserved(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        byte = int(match.group(1), 16)
        return chr(byte) if byte in _UNRESERVED else f"%{match.group(1).upper()}"

    return _TRIPLET.sub(replace, text)


def _normalise_path(text: str, *, hierarchical: bool) -> str:
    path, query = _split_query(text)
    if hierarchical:
        path = _remove_dot_segments(path)
    for segment in path.split("/"):
        decoded = _TRIPLET.sub(lambda m: chr(int(m.group(1), 16)), segment)
        if decoded != segment and (decoded in (".", "..") or "/" in decoded or "\\" in decoded or "\x00" in decoded):
            raise NonCanonicalUri("resource URI hides a path separator or dot segment in percent-encoding")
    return path + query


def _split_query(text: str) -> tuple[str, str]:
    cut = min((i for i in (text.find("?"), text.find("#")) if i >= 0), default=-1)
    return (text, "") if cut < 0 else (text[:cut], text[cut:])


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, on a path whose unreserved triplets are already decoded."""
    output: list[str] = []
    absolute = path.startswith("/")
    segments = path.split("/")
    if absolute:
        segments = segments[1:]
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if output:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    joined = "/".join(output)
    return "/" + joined if absolute else joined
