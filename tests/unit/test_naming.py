"""Exposed names and URIs: valid, bounded, deterministic, reversible where they must be."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from mcp_gateway.catalog.naming import Namer, shorten

VALID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def test_prefixing_and_unprefixed():
    assert Namer("gh").name("create_issue") == "gh__create_issue"
    assert Namer("gh", ".").name("create_issue") == "gh.create_issue"
    assert Namer(None).name("create_issue") == "create_issue"


@given(st.text(min_size=1, max_size=300), st.integers(min_value=16, max_value=128))
def test_shortened_names_are_always_valid_bounded_and_stable(name: str, limit: int):
    out = shorten(name, limit)
    assert VALID.match(out) and len(out) <= limit
    assert shorten(name, limit) == out


@given(st.text(alphabet="abc_", min_size=70, max_size=90), st.text(alphabet="abc_", min_size=70, max_size=90))
def test_distinct_long_names_stay_distinct(a: str, b: str):
    if a != b:
        assert shorten(a, 64) != shorten(b, 64)


def test_valid_short_names_pass_unchanged():
    assert shorten("search_docs", 64) == "search_docs"


@given(st.sampled_from(["test://static", "ui://widget/app.html", "file:///etc/hosts", "urn:isbn:123", "plain"]))
def test_resource_uris_round_trip_and_keep_their_scheme(uri: str):
    namer = Namer("everything")
    exposed = namer.uri(uri)
    assert namer.original_uri(exposed) == uri
    if ":" in uri:
        assert exposed.split(":", 1)[0] == uri.split(":", 1)[0]
    assert Namer("other").original_uri(exposed) is None


def test_ui_uri_shape():
    assert Namer("apps").uri("ui://widget/app.html") == "ui://apps__widget/app.html"
    assert Namer("fs").uri("file:///etc/hosts") == "file://fs__/etc/hosts"
