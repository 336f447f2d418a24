"""The policy file format (`policies/*.yaml`): who may see and use which upstreams, tools, resources,
prompts and models. `mcp-gateway policy schema` prints it as JSON Schema."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    """Which callers a rule is about. Every field given must match; lists are alternatives (globs)."""

    tenants: list[str] | None = Field(None, description="Tenant globs; default: the file's `tenants`.")
    subjects: list[str] = Field(default_factory=lambda: ["*"], description="Subject globs.")
    scopes: list[str] = Field(default_factory=list, description="Scopes the caller must all hold.")
    claims: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description="Claim -> value (or any of values); a list-valued claim matches when it contains one.",
    )


class Targets(_Strict):
    """What a rule is about, as the client sees it (exposed names). Kinds not given are not matched;
    a rule with no targets at all is about everything."""

    upstreams: list[str] | None = Field(None, description="Upstream name globs (every item they offer).")
    tools: list[str] | None = Field(None, description="Exposed tool name globs, e.g. github__create_*.")
    resources: list[str] | None = Field(None, description="Exposed resource URI globs (templates too).")
    prompts: list[str] | None = Field(None, description="Exposed prompt name globs.")
    models: list[str] | None = Field(None, description="LLM model name globs (the LLM bridge).")


class Rule(_Strict):
    name: str = Field(min_length=1, description="Named in denials, the audit log and `policy explain`.")
    effect: Literal["allow", "deny", "require"] = Field(
        description=(
            "allow: grants the targets; deny: refuses them (deny wins); require: the targets may be used only "
            "by callers matching `when` and with `condition` true."
        )
    )
    when: Match = Field(default_factory=Match)
    targets: Targets = Field(default_factory=Targets)
    condition: str | None = Field(
        None,
        description=(
            "A CEL expression over `args` (the call's arguments), `principal` (tenant, subject, scopes, claims), "
            "`target` and `upstream`; evaluated per call, so it never hides a target from lists."
        ),
    )
    message: str | None = Field(None, description="Shown to the caller when this rule denies.")


class Limit(_Strict):
    """How much: a request rate (GCRA), concurrent calls, and for LLM traffic tokens and cost per period,
    counted per tenant, subject or tool (for models: per model)."""

    name: str = Field(min_length=1, description="Named in the error a limited caller gets.")
    when: Match = Field(default_factory=Match)
    targets: Targets = Field(default_factory=Targets)
    per: Literal["tenant", "subject", "tool"] = Field(
        "subject", description="Who shares one budget: the whole tenant, each subject, or each subject per tool."
    )
    rate: str | None = Field(
        None, pattern=r"^[1-9][0-9]*/(second|minute|hour|day)$", description='Requests per period, e.g. "60/minute".'
    )
    burst: int | None = Field(None, ge=1, description="Requests allowed at once; default: the rate's count.")
    concurrency: int | None = Field(None, ge=1, description="Calls in flight at once.")
    tokens: str | None = Field(
        None,
        pattern=r"^[1-9][0-9]*/(minute|hour|day|month)$",
        description=(
            'LLM tokens (input + output) per calendar period (UTC), e.g. "200000/day". A request is refused '
            "once the period's count is reached; the request that crosses it is counted in full."
        ),
    )
    cost: str | None = Field(
        None,
        pattern=r"^[0-9]+(\.[0-9]+)?/(hour|day|month)$",
        description='LLM spend in USD per calendar period (UTC), priced from `llm.prices`, e.g. "25.00/month".',
    )

    @model_validator(mode="after")
    def _something(self) -> Limit:
        if self.rate is None and self.concurrency is None and self.tokens is None and self.cost is None:
            raise ValueError("a limit needs at least one of rate, concurrency, tokens, cost")
        return self


class ToolView(_Strict):
    """How one tool looks to a tenant."""

    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,128}$", description="The name this tenant sees.")
    description: str | None = None
    fixed_args: dict[str, Any] = Field(
        default_factory=dict, description="Arguments always sent with these values (and not shown to the tenant)."
    )
    hidden_args: list[str] = Field(default_factory=list, description="Arguments not shown, and dropped if sent.")


class View(_Strict):
    """A curated view of the catalog for some tenants: renamed tools, other descriptions, fixed arguments."""

    tenants: list[str] | None = Field(None, description="Tenant globs; default: the file's `tenants`.")
    tools: dict[str, ToolView] = Field(default_factory=dict, description="Exposed tool name -> its view.")


class RecordingControls(_Strict):
    """What traces may hold for these tenants: the OpenInference `OPENINFERENCE_HIDE_*` settings, per tenant.
    Unset fields keep the gateway-wide setting (from the environment)."""

    hide_inputs: bool | None = Field(None, description="No input values or input messages at all.")
    hide_outputs: bool | None = Field(None, description="No output values or output messages at all.")
    hide_input_messages: bool | None = None
    hide_output_messages: bool | None = None
    hide_input_images: bool | None = None
    hide_input_text: bool | None = None
    hide_output_text: bool | None = None
    hide_embedding_vectors: bool | None = None
    hide_llm_invocation_parameters: bool | None = None
    base64_image_max_length: int | None = Field(None, ge=0)


class PolicyFile(_Strict):
    tenants: list[str] = Field(
        default_factory=lambda: ["*"], description="Tenant globs this file is about (its default and its rules)."
    )
    default: Literal["allow", "deny"] | None = Field(
        None, description="What these tenants get when no rule decides; the most specific file's default wins."
    )
    rules: list[Rule] = Field(default_factory=list)
    limits: list[Limit] = Field(default_factory=list)
    views: list[View] = Field(default_factory=list)
    recording: RecordingControls | None = Field(
        None, description="Trace recording controls for these tenants; the most specific file's setting wins per field."
    )
