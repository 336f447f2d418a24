"""OpenAI /v1/embeddings <-> Gemini `batchEmbedContents` (and Vertex AI `:predict` answers); gemini.py
re-exports both functions.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

Json = dict[str, Any]


def embeddings_request(request: Json, model: str) -> Json:
    """OpenAI /v1/embeddings request (input: str | list[str]; dimensions) -> batchEmbedContents body."""
    inputs = request.get("input")
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("Gemini embeddings take text: `input` must be a string or a list of strings")
    common: Json = {}
    if request.get("task_type"):  # Gemini's own knobs, accepted as extra fields
        common["taskType"] = str(request["task_type"]).upper()
    if request.get("title"):
        common["title"] = request["title"]
    if request.get("dimensions"):
        common["outputDimensionality"] = int(request["dimensions"])
    name = model if model.startswith("models/") else f"models/{model}"
    return {"requests": [{"model": name, "content": {"parts": [{"text": t}]}, **common} for t in texts]}


def embeddings_response(body: Json, model: str, *, encoding_format: str | None = None) -> Json:
    """batchEmbedContents response ({"embeddings": [{"values": [...]}]}) -> OpenAI embeddings list object. Also
    reads Vertex AI's :predict answer ({"predictions": [{"embeddings": {"values", "statistics"}}]})."""
    tokens = 0
    if "predictions" in body:
        vectors = []
        for prediction in body["predictions"] or []:
            embedding = prediction.get("embeddings") or {}
            vectors.append(embedding.get("values") or [])
            tokens += int((embedding.get("statistics") or {}).get("token_count") or 0)
    else:
        vectors = [e.get("values") or [] for e in body.get("embeddings") or []]
    tokens = tokens or int((body.get("usageMetadata") or {}).get("promptTokenCount") or 0)
    data = [
        {"object": "embedding", "index": i, "embedding": _encode(v) if encoding_format == "base64" else v}
        for i, v in enumerate(vectors)
    ]
    return {
        "object": "list",
        "data": data,
        "model": model.removeprefix("models/"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _encode(vector: list[float]) -> str:
    """OpenAI's base64 encoding: little-endian float32s."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
