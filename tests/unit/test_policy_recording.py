"""Per-tenant recording controls in policy files: the most specific file wins per field, and the result
is what the tracer's `Recording` takes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mcp_gateway.policy.engine import PolicyEngine
from mcp_gateway.policy.model import PolicyFile
from mcp_gateway.telemetry.openinference import Recording


def engine(*files: dict) -> PolicyEngine:
    return PolicyEngine([(f"f{i}", PolicyFile.model_validate(f), {}) for i, f in enumerate(files)])


def test_most_specific_file_wins_per_field() -> None:
    policies = engine(
        {"tenants": ["support"], "recording": {"hide_outputs": False, "hide_input_images": True}},
        {"tenants": ["*"], "recording": {"hide_inputs": True, "hide_outputs": True}},
        {"tenants": ["sup*"], "recording": {"hide_inputs": False}},
    )
    assert policies.recording_for("support") == {"hide_inputs": False, "hide_outputs": False, "hide_input_images": True}
    assert policies.recording_for("engineering") == {"hide_inputs": True, "hide_outputs": True}
    assert engine({"tenants": ["*"]}).recording_for("anyone") == {}


def test_controls_apply_to_the_tracers_recording() -> None:
    policies = engine({"tenants": ["legal"], "recording": {"hide_inputs": True, "base64_image_max_length": 10}})
    recording = Recording(hide_outputs=True).overridden(policies.recording_for("legal"))
    assert (recording.hide_inputs, recording.hide_outputs, recording.base64_image_max_length) == (True, True, 10)


def test_unknown_recording_fields_are_rejected() -> None:
    with pytest.raises(ValidationError):
        PolicyFile.model_validate({"recording": {"hide_everything": True}})
