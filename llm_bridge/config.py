"""The bridge's configuration: backends (where models run), model routes (what clients may ask for and
where it goes), and the price table usage is costed with. The gateway embeds it as `llm:` in gateway.yaml."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Provider = Literal["openai", "azure", "anthropic", "bedrock", "gemini", "vertex"]

DEFAULT_BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
}
BACKEND_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Backend(_Strict):
    """One place models run: an account at a provider, or a local OpenAI-compatible server."""

    provider: Provider = Field(description="openai covers every OpenAI-compatible server (vLLM, Ollama, llama.cpp).")
    base_url: str | None = Field(
        None,
        description=(
            "Root URL. openai: up to /v1; azure: https://<resource>.openai.azure.com; anthropic: without /v1; "
            "gemini: without /v1beta; vertex: https://<location>-aiplatform.googleapis.com; bedrock: default "
            "https://bedrock-runtime.<region>.amazonaws.com."
        ),
    )
    api_key: str | None = Field(
        None,
        description=(
            "The backend's key; use ${ENV}. Sent as the provider expects it (Bearer, x-api-key, api-key, "
            "x-goog-api-key; vertex: a Bearer access token)."
        ),
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers sent with every request.")
    timeout: float = Field(120.0, gt=0, description="Seconds for a whole non-streaming answer.")
    connect_timeout: float = Field(5.0, gt=0, description="Seconds to connect.")
    first_token_timeout: float = Field(
        60.0, gt=0, description="Seconds until a streaming answer's first byte; past it the next backend is tried."
    )
    idle_timeout: float = Field(60.0, gt=0, description="Seconds a stream may stay silent before it is ended.")
    # Azure OpenAI
    api_version: str = Field("2024-10-21", description="azure: the api-version query parameter.")
    # AWS Bedrock
    region: str | None = Field(None, description="bedrock: AWS region (vertex: the location).")
    aws_access_key_id: str | None = Field(None, description="bedrock: use ${AWS_ACCESS_KEY_ID}.")
    aws_secret_access_key: str | None = Field(None, description="bedrock: use ${AWS_SECRET_ACCESS_KEY}.")
    aws_session_token: str | None = None
    # Vertex AI
    project: str | None = Field(None, description="vertex: the Google Cloud project.")
    max_connections: int = Field(100, ge=1, description="Keep-alive connections to this backend.")

    @model_validator(mode="after")
    def _complete(self) -> Backend:
        if self.provider == "azure" and not self.base_url:
            raise ValueError("azure needs base_url (https://<resource>.openai.azure.com)")
        if self.provider == "bedrock":
            if not self.region and not self.base_url:
                raise ValueError("bedrock needs region")
            if not (self.aws_access_key_id and self.aws_secret_access_key):
                raise ValueError("bedrock needs aws_access_key_id and aws_secret_access_key")
        if self.provider == "vertex" and not (self.project and self.region):
            raise ValueError("vertex needs project and region")
        return self


class Target(_Strict):
    backend: str
    model: str | None = Field(None, description="The model id the backend gets; default: the name the client used.")
    weight: int = Field(1, ge=0, description="Share of traffic among targets of the same priority.")
    priority: int = Field(0, description="Lower goes first; higher priorities are the fallbacks.")


class ModelRoute(_Strict):
    """A model name clients use (an alias, a virtual model, or a glob such as `gpt-*`) and where it goes."""

    targets: list[Target] = Field(min_length=1)
    retries: int = Field(1, ge=0, le=5, description="Extra tries on the same target for 429/5xx/timeouts.")
    backoff_ms: float = Field(100.0, ge=0, description="First retry delay; doubles per retry, with jitter.")
    fallback_on: list[int] = Field(
        default_factory=lambda: [408, 429, 500, 502, 503, 504, 529],
        description="Backend statuses that move on to the next try (timeouts and connection errors always do).",
    )
    cooldown: float = Field(
        5.0, ge=0, description="Seconds a target that just failed is tried after the others (0: never demoted)."
    )
    description: str | None = None


class Price(_Strict):
    """USD per million tokens."""

    input: float = Field(0.0, ge=0)
    output: float = Field(0.0, ge=0)
    cached_input: float | None = Field(None, ge=0, description="Default: `input`.")
    cache_write: float | None = Field(None, ge=0, description="Default: `input`.")


class BridgeConfig(_Strict):
    backends: dict[str, Backend] = Field(default_factory=dict)
    models: dict[str, ModelRoute] = Field(
        default_factory=dict,
        description=(
            "Model name (or glob) -> route. Exact names win over globs; globs are tried in file order. A name "
            "`<backend>/<model>` not listed here reaches that backend directly only if `direct` is true."
        ),
    )
    direct: bool = Field(False, description="Allow `<backend>/<model>` names that no route lists.")
    prices: dict[str, Price] = Field(
        default_factory=dict, description="Model id (as the backend names it, or a glob) -> price per million tokens."
    )
    sampling_model: str | None = Field(
        None, description="Answer upstream MCP servers' sampling requests with this model (a name from `models`)."
    )

    @model_validator(mode="after")
    def _targets_exist(self) -> BridgeConfig:
        for name in self.backends:
            if not BACKEND_NAME.match(name):
                raise ValueError(f"backend name {name!r} must match {BACKEND_NAME.pattern}")
        for model, route in self.models.items():
            for target in route.targets:
                if target.backend not in self.backends:
                    raise ValueError(f"model {model!r} names the unknown backend {target.backend!r}")
        if self.sampling_model is not None and self.sampling_model not in self.models:
            raise ValueError(f"sampling_model {self.sampling_model!r} must be one of the names in `models`")
        return self
