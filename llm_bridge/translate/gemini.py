"""Google Gemini / Vertex AI `generateContent` <-> canonical (OpenAI Chat Completions) translation: the request
side, and the mapping choices of both directions.

Choices that are not forced by the two formats:

- Tool parameters go out as `parametersJsonSchema` and structured-output schemas as `responseJsonSchema`. Both
  take JSON Schema as written ($ref/$defs, anyOf, additionalProperties, ...), which MCP tool schemas use freely;
  the older `parameters`/`responseSchema` fields take an OpenAPI subset that would need a lossy rewrite (refs
  inlined, keywords dropped). Only the top-level `$schema` meta-keyword is removed; OpenAI's `strict` lives on
  the function object, not in the schema, and is not sent.
- `reasoning_effort` becomes `thinkingConfig`: a `thinkingBudget` for Gemini 1.x/2.x models (which know no levels),
  a `thinkingLevel` for everything else (Gemini 3 onwards, where budgets are deprecated), see `_thinking_config`.
  The generation comes from `chat["model"]`; a name that does not say (an alias) is taken for the newest.
- Thought signatures ride on tool calls as `extra_content.google.thought_signature` (the field Google's own
  OpenAI-compatible endpoint uses) and on the assistant message the same way for text parts, and go back on the
  parts they came from. Gemini 3 rejects unsigned function calls, so calls that arrive unsigned (from another
  model, or from a client that dropped the field) get Google's documented `skip_thought_signature_validator`.
- functionCall/functionResponse `id`s are sent by default (the Gemini API matches responses by them); Vertex AI
  rejects the field on some versions, so its caller passes `function_call_ids=False`.
- Prior `reasoning_content` is not replayed: Gemini ignores thought text in history, signatures carry the context.

The rest lives in sibling modules and is re-exported here: `chat_response` and `error_of` in gemini_response.py,
streaming (`StreamToChat`, and the response helpers it shares with `chat_response`) in gemini_stream.py, and
embeddings, both ways, in gemini_embeddings.py.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import unquote

import orjson

from .gemini_embeddings import embeddings_request, embeddings_response
from .gemini_response import chat_response, error_of
from .gemini_stream import StreamToChat

Json = dict[str, Any]

SKIP_SIGNATURE = "skip_thought_signature_validator"

# Extension -> MIME type for remote files; Gemini requires one on fileData and URLs rarely say.
_MIME_BY_EXT = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "heic": "image/heic",
    "heif": "image/heif",
    "pdf": "application/pdf",
    "txt": "text/plain",
    "mp3": "audio/mp3",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "mp4": "video/mp4",
    "mov": "video/mov",
    "webm": "video/webm",
}
_MIME_ALIASES = {"image/jpg": "image/jpeg"}  # browsers and clients write image/jpg; Gemini only knows image/jpeg

_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}

_GENERATION_FIELDS = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",  # not OpenAI, but vLLM-style clients send it and Gemini has it
    "n": "candidateCount",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}

# Gemini 2.x budgets: low/medium/high as Google's OpenAI-compatible endpoint maps them (1K/8K/24K).
_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 32768}
_FLASH_MAX_BUDGET = 24576  # Flash and Flash-Lite stop there; Pro goes to 32768
_PRO_MIN_BUDGET = 128  # Pro cannot turn thinking off
_LEVELS = {"none": "minimal", "minimal": "minimal", "low": "low", "medium": "medium", "high": "high", "xhigh": "high"}
_PRO_LEVELS = {"minimal": "low", "medium": "high"}  # Gemini 3 Pro knows only low and high


def gemini_request(chat: Json, *, function_call_ids: bool = True) -> Json:
    """OpenAI chat request -> generateContent body (the model goes in the URL; the caller picks
    :generateContent or :streamGenerateContent?alt=sse)."""
    model = str(chat.get("model") or "")
    system, contents = _contents(chat.get("messages") or [], function_call_ids)
    if _major_version(model) >= 3:
        _sign_unsigned_calls(contents)
    body: Json = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    tools, tool_config = _tools(chat)
    if tools:
        body["tools"] = tools
        if tool_config:
            body["toolConfig"] = tool_config
    config = _generation_config(chat, model)
    if config:
        body["generationConfig"] = config
    return body


def _contents(messages: list[Json], with_ids: bool) -> tuple[list[Json], list[Json]]:
    system: list[Json] = []
    contents: list[Json] = []
    call_names: dict[str, str] = {}  # tool call id -> function name, for tool messages that omit the name
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend({"text": text} for text in _texts(message.get("content")))
        elif role == "user":
            _append(contents, "user", _user_parts(message.get("content")))
        elif role == "assistant":
            _append(contents, "model", _assistant_parts(message, call_names, with_ids))
        elif role in ("tool", "function"):
            _append(contents, "user", [_function_response(message, call_names, with_ids)])
    return system, contents


def _append(contents: list[Json], role: str, parts: list[Json]) -> None:
    """Gemini wants user/model turns to alternate: a same-role message joins the previous turn."""
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content] if content else []
    if isinstance(content, list):
        return [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str) and p["text"]]
    return []


def _user_parts(content: Any) -> list[Json]:
    if not isinstance(content, list):
        return [{"text": text} for text in _texts(content)]
    parts: list[Json] = []
    for item in content:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text" and item.get("text"):
            parts.append({"text": item["text"]})
        elif kind == "image_url":
            image = item.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str) and url:
                parts.append(_media_part(url))
        elif kind == "input_audio":
            audio = item.get("input_audio") or {}
            mime = "audio/" + str(audio.get("format") or "wav")
            parts.append({"inlineData": {"mimeType": _MIME_ALIASES.get(mime, mime), "data": audio.get("data", "")}})
        elif kind == "file":
            file = item.get("file") or {}
            data = file.get("file_data")
            if isinstance(data, str) and data:
                default = _guess_mime(str(file.get("filename") or ""), "application/pdf")
                parts.append(_media_part(data if data.startswith("data:") else f"data:{default};base64,{data}"))
    return parts


def _media_part(url: str) -> Json:
    """A data: URL -> inlineData; anything else (https, gs://, Files API) -> fileData."""
    if not url.startswith("data:"):
        return {"fileData": {"mimeType": _guess_mime(url, "image/jpeg"), "fileUri": url}}
    header, _, data = url[5:].partition(",")
    mime, *flags = header.split(";")
    if "base64" not in flags:  # rare percent-encoded data URL: Gemini only takes base64
        data = base64.b64encode(unquote(data).encode()).decode()
    mime = mime.strip().lower() or "image/jpeg"
    return {"inlineData": {"mimeType": _MIME_ALIASES.get(mime, mime), "data": data}}


def _guess_mime(url: str, default: str) -> str:
    path = url.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[-1]
    ext = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    return _MIME_BY_EXT.get(ext, default)


def _assistant_parts(message: Json, call_names: dict[str, str], with_ids: bool) -> list[Json]:
    parts: list[Json] = []
    text = "".join(_texts(message.get("content")))
    if text:
        part: Json = {"text": text}
        if signature := _signature_of(message):
            part["thoughtSignature"] = signature
        parts.append(part)
    calls = list(message.get("tool_calls") or [])
    if isinstance(message.get("function_call"), dict):  # legacy single function call
        calls.append({"function": message["function_call"]})
    for call in calls:
        function = call.get("function")
        if not isinstance(function, dict):
            continue  # custom (non-function) tools have no Gemini equivalent
        name = str(function.get("name") or "")
        call_id = call.get("id")
        if call_id:
            call_names[call_id] = name
        function_call: Json = {"name": name, "args": _arguments(function.get("arguments"))}
        if with_ids and call_id:
            function_call["id"] = call_id
        part = {"functionCall": function_call}
        if signature := _signature_of(call):
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _arguments(raw: Any) -> Json:
    """OpenAI arguments are a JSON string; Gemini args must be an object ("" means no arguments)."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        args = orjson.loads(raw)
    except orjson.JSONDecodeError:
        args = None
    return args if isinstance(args, dict) else {"arguments": raw}


def _function_response(message: Json, call_names: dict[str, str], with_ids: bool) -> Json:
    call_id = message.get("tool_call_id")
    # The call's own name first: Gemini pairs a response with its call by name.
    name = call_names.get(call_id or "") or message.get("name") or "unknown"
    text = "".join(_texts(message.get("content")))
    try:
        parsed = orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        parsed = None
    response: Json = {"name": name, "response": parsed if isinstance(parsed, dict) else {"content": text}}
    if with_ids and call_id:
        response["id"] = call_id
    return {"functionResponse": response}


def _signature_of(holder: Json) -> str | None:
    extra = holder.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) and signature else None


def _sign_unsigned_calls(contents: list[Json]) -> None:
    """Gemini 3 validates the signature on the first functionCall of each model turn (later parallel calls are
    unsigned by design); a turn whose first call has none gets the documented validator bypass."""
    for content in contents:
        if content["role"] != "model":
            continue
        first = next((p for p in content["parts"] if "functionCall" in p), None)
        if first is not None and "thoughtSignature" not in first:
            first["thoughtSignature"] = SKIP_SIGNATURE


def _major_version(model: str) -> int:
    """3 for gemini-3-pro-preview, 2 for gemini-2.5-flash; 99 when the name says nothing (assume newest)."""
    match = re.search(r"gemini-(\d+)", model.lower())
    return int(match.group(1)) if match else 99


def _tools(chat: Json) -> tuple[list[Json], Json | None]:
    functions = [t["function"] for t in chat.get("tools") or [] if isinstance(t.get("function"), dict)]
    functions += [f for f in chat.get("functions") or [] if isinstance(f, dict)]  # legacy `functions`
    choice = chat.get("tool_choice", chat.get("function_call"))
    mode: str | None = None
    allowed: list[str] | None = None
    if isinstance(choice, str):
        mode = _TOOL_MODES.get(choice)
    elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        spec = choice.get("allowed_tools") or {}
        names = {str((t.get("function") or {}).get("name")) for t in spec.get("tools") or []}
        functions = [f for f in functions if f.get("name") in names]  # AUTO cannot name functions: filter instead
        mode = "ANY" if spec.get("mode") == "required" else "AUTO"
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") or choice.get("name")  # tool_choice or function_call
        mode, allowed = "ANY", [str(name)]
    if not functions:
        return [], None
    tools = [{"functionDeclarations": [_declaration(f) for f in functions]}]
    if mode is None:
        return tools, None
    config: Json = {"mode": mode}
    if allowed:
        config["allowedFunctionNames"] = allowed
    return tools, {"functionCallingConfig": config}


def _declaration(function: Json) -> Json:
    declaration: Json = {"name": function.get("name", "")}
    if function.get("description"):
        declaration["description"] = function["description"]
    if isinstance(function.get("parameters"), dict):
        declaration["parametersJsonSchema"] = _json_schema(function["parameters"])
    return declaration


def _json_schema(schema: Json) -> Json:
    return {k: v for k, v in schema.items() if k != "$schema"}


def _generation_config(chat: Json, model: str) -> Json:
    config: Json = {}
    max_tokens = chat.get("max_completion_tokens", chat.get("max_tokens"))
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    for openai_name, gemini_name in _GENERATION_FIELDS.items():
        if chat.get(openai_name) is not None:
            config[gemini_name] = chat[openai_name]
    stop = chat.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    response_format = chat.get("response_format") or {}
    if response_format.get("type") == "json_object":
        config["responseMimeType"] = "application/json"
    elif response_format.get("type") == "json_schema":
        config["responseMimeType"] = "application/json"
        schema = (response_format.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            config["responseJsonSchema"] = _json_schema(schema)
    effort = chat.get("reasoning_effort")
    if isinstance(effort, str) and (thinking := _thinking_config(effort.lower(), model)):
        config["thinkingConfig"] = thinking
    return config


def _thinking_config(effort: str, model: str) -> Json | None:
    """Budgets for Gemini 1.x/2.x, levels otherwise; each clamped to what the model family accepts."""
    if effort not in _BUDGETS:
        return None
    pro = "pro" in model.lower()
    config: Json
    if _major_version(model) <= 2:
        budget = _BUDGETS[effort]
        budget = max(budget, _PRO_MIN_BUDGET) if pro else min(budget, _FLASH_MAX_BUDGET)
        config = {"thinkingBudget": budget}
    else:
        level = _LEVELS[effort]
        config = {"thinkingLevel": _PRO_LEVELS.get(level, level) if pro else level}
    if effort != "none":
        config["includeThoughts"] = True
    return config


__all__ = [
    "StreamToChat",
    "chat_response",
    "embeddings_request",
    "embeddings_response",
    "error_of",
    "gemini_request",
]
