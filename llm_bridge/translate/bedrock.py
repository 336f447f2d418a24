"""AWS Bedrock Converse / ConverseStream <-> canonical (OpenAI Chat Completions dicts): the request side.

The model id is not in the body: it goes in the URL, `model_path(model_id, stream)`. Choices where the two
APIs do not line up:

- `tool_choice: "none"`: Converse cannot forbid tool use. Tools are dropped, unless the history holds
  toolUse/toolResult blocks: Converse then requires a toolConfig, so the tools stay (the model may still call one).
- `response_format: json_schema` -> `outputConfig.textFormat` (Converse structured output; the schema travels
  as a JSON string). `json_object` has no Converse equivalent: it becomes a system instruction, as for Anthropic.
- `reasoning_effort` -> `additionalModelRequestFields.thinking` (the Anthropic Claude shape) with the budgets of
  translate.anthropic: an explicit max_tokens caps the budget (OpenAI counts reasoning in it), thinking stays off
  below Claude's 1024 floor or when the tool choice forces a tool, and it drops temperature/topP (Claude rejects
  them with thinking). Reasoning comes back as `reasoning_content`, its signature as `reasoning_signature` and
  redacted blocks as `reasoning_redacted` (base64), and those fields on an assistant message are replayed.
  Unsigned reasoning is not replayed: Claude rejects a thinking block it cannot verify.
- images must be data: URLs (sent as base64 bytes) or s3:// locations: Converse fetches nothing, and this
  module does no I/O, so an http(s) URL raises `UnsupportedContent` (the caller may fetch it and retry).
- temperature is clamped to Converse's 0..1; top_p only goes without temperature (recent Claude models reject
  both); blank stop sequences are left out; tool call ids are reduced to Converse's [a-zA-Z0-9_.:-]{1,64}.
- ignored: n, seed, penalties, logit_bias, top_k, parallel_tool_calls, user.

The way back (responses, stream events, usage, stop reasons, errors, Titan embeddings answers) is in
bedrock_response.py, re-exported here.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import unquote_to_bytes

from llm_bridge.aws.sigv4 import uri_encode

from .bedrock_response import (
    StreamToChat,
    chat_response,
    error_of,
    finish_reason,
    titan_embeddings_response,
    usage_of,
)

# The budgets of translate.anthropic (Claude either way); Claude's floor is 1024 and the budget stays below maxTokens.
THINKING_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 24576}
MIN_THINKING_BUDGET = 1024
ANSWER_TOKENS = 4096  # room left for the answer when thinking is on and the client set no max_tokens
JSON_INSTRUCTION = "Respond with a single valid JSON object and nothing else."
IMAGE_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "gif": "gif", "webp": "webp"}
# Documents by MIME type; Converse also reads Office formats, whose MIME types clients rarely get right.
DOCUMENT_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}


class UnsupportedContent(ValueError):
    """The request holds something Converse cannot take as given (the caller answers 400)."""


def model_path(model_id: str, stream: bool = False) -> str:
    """The request path, model id percent-encoded as one segment (':' -> %3A, an ARN's '/' -> %2F)."""
    return f"/model/{uri_encode(model_id)}/{'converse-stream' if stream else 'converse'}"


def converse_request(chat: dict[str, Any]) -> dict[str, Any]:
    """OpenAI chat request -> Converse body (the model id goes in the URL: /model/{id}/converse or /converse-stream)."""
    system, messages = _messages(chat.get("messages") or [])
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = system
    inference = _inference_config(chat)
    tool_config = _tool_config(chat, messages)
    forced = bool({"any", "tool"} & set((tool_config or {}).get("toolChoice", {})))
    thinking = None if forced else _thinking(chat.get("reasoning_effort"), inference)
    if inference:
        body["inferenceConfig"] = inference
    if thinking:
        body["additionalModelRequestFields"] = {"thinking": thinking}
    if tool_config:
        body["toolConfig"] = tool_config
    response_format = chat.get("response_format") or {}
    if response_format.get("type") == "json_object":
        body["system"] = [*system, {"text": JSON_INSTRUCTION}]
    elif output := _output_config(response_format):
        body["outputConfig"] = output
    return body


def _messages(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """System blocks, and turns with same-role neighbours merged: Converse requires user/assistant alternation."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for msg in items:
        role = msg.get("role")
        if role in ("system", "developer"):
            system += [{"text": t} for t in _texts(msg.get("content")) if t.strip()]
            continue
        if role == "assistant":
            side, blocks = "assistant", _assistant_blocks(msg)
        elif role == "tool":
            side, blocks = "user", [_tool_result(msg)]
        else:
            side, blocks = "user", _user_blocks(msg.get("content"))
        if not blocks:
            continue  # Converse rejects empty content lists
        if turns and turns[-1]["role"] == side:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": side, "content": blocks})
    return system, turns


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    return [p.get("text") or p.get("refusal") or "" for p in content or [] if p.get("type") in ("text", "refusal")]


def _user_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content.strip() else []
    blocks: list[dict[str, Any]] = []
    for part in content or []:
        kind = part.get("type")
        if kind == "text":
            if (part.get("text") or "").strip():  # Converse rejects blank text blocks
                blocks.append({"text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image((part.get("image_url") or {}).get("url") or ""))
        elif kind == "file":
            blocks.append(_document(part.get("file") or {}))
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            blocks.append({"audio": {"format": audio.get("format"), "source": {"bytes": audio.get("data")}}})
        else:
            raise UnsupportedContent(f"content part type {kind!r} is not supported by Bedrock Converse")
    return blocks


def _assistant_blocks(msg: dict[str, Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    reasoning, signature = msg.get("reasoning_content"), msg.get("reasoning_signature")
    if reasoning and signature:
        blocks.append({"reasoningContent": {"reasoningText": {"text": reasoning, "signature": signature}}})
    blocks += [{"reasoningContent": {"redactedContent": r}} for r in msg.get("reasoning_redacted") or []]
    blocks += [{"text": t} for t in _texts(msg.get("content")) if t.strip()]
    for call in msg.get("tool_calls") or []:
        fn = call.get("function") or {}
        blocks.append({"toolUse": {"toolUseId": _tool_id(call.get("id")), "name": fn.get("name"), "input": _input(fn)}})
    return blocks


def _input(fn: dict[str, Any]) -> dict[str, Any]:
    """Tool call arguments (a JSON string, "" meaning none) -> the object Converse wants."""
    raw = fn.get("arguments") or ""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise UnsupportedContent(f"arguments of tool call {fn.get('name')!r} are not JSON") from exc
    if not isinstance(value, dict):
        raise UnsupportedContent(f"arguments of tool call {fn.get('name')!r} are not a JSON object")
    return value


def _tool_result(msg: dict[str, Any]) -> dict[str, Any]:
    """Tool output stays text: every Converse model takes text, not every one takes a json block."""
    content = msg.get("content")
    blocks: list[dict[str, Any]] = []
    if isinstance(content, str):
        blocks = [{"text": content}] if content.strip() else []
    else:
        for part in content or []:
            if part.get("type") == "image_url":
                blocks.append(_image((part.get("image_url") or {}).get("url") or ""))
            elif (part.get("text") or "").strip():
                blocks.append({"text": part["text"]})
    return {"toolResult": {"toolUseId": _tool_id(msg.get("tool_call_id")), "content": blocks}}


def _tool_id(call_id: str | None) -> str:
    """Converse ids match [a-zA-Z0-9_.:-]{1,64}; other providers' ids may not. Same id in, same id out."""
    return re.sub(r"[^a-zA-Z0-9_.:-]", "_", call_id or "")[:64] or "call"


def _image(url: str) -> dict[str, Any]:
    if url.startswith("data:"):
        mime, data = _data_url(url)
        fmt = IMAGE_FORMATS.get(mime.partition("/")[2])
        if not fmt:
            raise UnsupportedContent(f"image type {mime!r} is not supported by Bedrock Converse")
        return {"image": {"format": fmt, "source": {"bytes": data}}}
    if url.startswith("s3://"):
        fmt = IMAGE_FORMATS.get(url.rpartition(".")[2].lower())
        if not fmt:
            raise UnsupportedContent(f"cannot tell the image format of {url!r}")
        return {"image": {"format": fmt, "source": {"s3Location": {"uri": url}}}}
    raise UnsupportedContent("Bedrock Converse takes images as data: URLs or s3:// locations, not fetched URLs")


def _document(file: dict[str, Any]) -> dict[str, Any]:
    data_url = file.get("file_data") or ""
    if not data_url.startswith("data:"):
        raise UnsupportedContent("Bedrock Converse takes files as inline file_data only")
    mime, data = _data_url(data_url)
    fmt = DOCUMENT_FORMATS.get(mime)
    if not fmt:
        raise UnsupportedContent(f"document type {mime!r} is not supported by Bedrock Converse")
    # Converse allows only letters, digits, single spaces, hyphens, parentheses and brackets in names.
    stem = (file.get("filename") or "").rsplit(".", 1)[0]
    name = " ".join(re.sub(r"[^A-Za-z0-9\-()\[\] ]", " ", stem).split()) or "document"
    return {"document": {"format": fmt, "name": name, "source": {"bytes": data}}}


def _data_url(url: str) -> tuple[str, str]:
    """data: URL -> (mime type, base64 text): the JSON API carries blobs as base64."""
    header, comma, data = url[5:].partition(",")
    if not comma:
        raise UnsupportedContent("malformed data: URL")
    mime, *params = header.split(";")
    if "base64" in params:
        return mime.lower(), "".join(data.split())
    return mime.lower(), base64.b64encode(unquote_to_bytes(data)).decode()


def _inference_config(chat: dict[str, Any]) -> dict[str, Any]:
    max_tokens = chat.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = chat.get("max_tokens")
    config: dict[str, Any] = {} if max_tokens is None else {"maxTokens": max_tokens}
    if chat.get("temperature") is not None:
        config["temperature"] = min(float(chat["temperature"]), 1.0)  # OpenAI goes to 2, Converse to 1
    elif chat.get("top_p") is not None:
        config["topP"] = chat["top_p"]
    stop = chat.get("stop")
    stops = [s for s in ([stop] if isinstance(stop, str) else stop or []) if s.strip()]
    if stops:
        config["stopSequences"] = stops
    return config


def _thinking(effort: str | None, inference: dict[str, Any]) -> dict[str, Any] | None:
    """Effort -> a Claude thinking budget; sets or respects maxTokens, which must exceed the budget. Takes
    temperature and topP out of `inference`: Claude only thinks with its default sampling."""
    budget = THINKING_BUDGETS.get(effort or "")
    if budget is None:
        return None  # no effort, or "none"
    if "maxTokens" not in inference:
        inference["maxTokens"] = budget + ANSWER_TOKENS
    elif inference["maxTokens"] <= MIN_THINKING_BUDGET:
        return None  # too small a cap to think at all: answer without thinking rather than fail
    else:
        budget = min(budget, inference["maxTokens"] - 1)  # OpenAI's cap covers reasoning too, so keep it
    inference.pop("temperature", None)
    inference.pop("topP", None)
    return {"type": "enabled", "budget_tokens": budget}


def _tool_config(chat: dict[str, Any], turns: list[dict[str, Any]]) -> dict[str, Any] | None:
    tools = chat.get("tools") or [{"type": "function", "function": f} for f in chat.get("functions") or []]
    choice = chat.get("tool_choice", chat.get("function_call"))
    specs = [_tool_spec(t["function"]) for t in tools if t.get("type", "function") == "function" and t.get("function")]
    used = [b["toolUse"]["name"] for turn in turns for b in turn["content"] if "toolUse" in b]
    has_tool_blocks = bool(used) or any("toolResult" in b for turn in turns for b in turn["content"])
    if choice == "none":
        if not has_tool_blocks:
            return None
        choice = None  # the history needs a toolConfig; no Converse choice forbids calls
    if not specs:
        if not has_tool_blocks:
            return None
        # Tools dropped from a request whose history used them: Converse still needs them declared.
        specs = [_tool_spec({"name": name}) for name in dict.fromkeys(used)]
    config: dict[str, Any] = {"tools": specs}
    if isinstance(choice, dict):
        name = (choice.get("function") or choice).get("name")
        config["toolChoice"] = {"tool": {"name": name}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    return config


def _tool_spec(fn: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": fn.get("name"),
        "inputSchema": {"json": fn.get("parameters") or {"type": "object", "properties": {}}},
    }
    if fn.get("description"):
        spec["description"] = fn["description"]
    return {"toolSpec": spec}


def _output_config(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    if not response_format or response_format.get("type") != "json_schema":
        return None
    schema = response_format.get("json_schema") or {}
    definition = {"schema": json.dumps(schema.get("schema") or {"type": "object"})}
    for key in ("name", "description"):
        if schema.get(key):
            definition[key] = schema[key]
    return {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": definition}}}


def titan_embeddings_request(text: str, dimensions: int | None = None) -> dict[str, Any]:
    """One input -> a Titan InvokeModel body (Titan embeds one text per call; v1 takes no `dimensions`)."""
    body: dict[str, Any] = {"inputText": text}
    if dimensions is not None:
        body["dimensions"] = dimensions
    return body


__all__ = [
    "StreamToChat",
    "UnsupportedContent",
    "chat_response",
    "converse_request",
    "error_of",
    "finish_reason",
    "model_path",
    "titan_embeddings_request",
    "titan_embeddings_response",
    "usage_of",
]
