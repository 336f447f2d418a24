"""Gemini / Vertex AI generateContent <-> canonical (OpenAI Chat Completions) translation.

Fixtures: tests/fixtures/providers/samples/ — OpenAI-shaped and Gemini-native request bodies and recorded
generateContent / embeddings responses, from agentgateway/agentgateway `crates/llm/src/tests` at commit 75b4e6ce
(Apache-2.0; see tests/fixtures/README.md). Outputs are checked against the OpenAI SDK's own types and against
the Gemini-native request fixtures' vocabulary and nesting.
"""

from __future__ import annotations

import base64
import itertools
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from llm_bridge.translate.gemini import (
    SKIP_SIGNATURE,
    StreamToChat,
    chat_response,
    embeddings_request,
    embeddings_response,
    error_of,
    gemini_request,
)

SAMPLES = Path(__file__).parents[1] / "fixtures" / "providers" / "samples"
COMPLETIONS = sorted((SAMPLES / "requests" / "completions").glob("*.json"))
GEMINI_NATIVE = SAMPLES / "requests" / "gemini"
RESPONSES = SAMPLES / "response" / "vertex-gemini"


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def completion(name: str) -> dict[str, Any]:
    return load(SAMPLES / "requests" / "completions" / f"{name}.json")


def native(name: str) -> dict[str, Any]:
    return load(GEMINI_NATIVE / f"{name}.json")


# --- the shape of a generateContent body -----------------------------------------------------------------------

# Values that are free-form JSON (schemas, call arguments, tool results): their keys are not Gemini's vocabulary.
FREE_FORM = {"parameters", "parametersJsonSchema", "responseSchema", "responseJsonSchema", "args", "response", "labels"}
# Fields of the documented API that the native fixtures happen not to use.
DOCUMENTED_ELSEWHERE = {
    "parametersJsonSchema",  # FunctionDeclaration: JSON Schema parameters (instead of the OpenAPI-subset `parameters`)
    "responseJsonSchema",  # GenerationConfig: JSON Schema output schema (instead of `responseSchema`)
    "presencePenalty",
    "frequencyPenalty",
}
PART_DATA = {"text", "inlineData", "fileData", "functionCall", "functionResponse"}
GENERATION_KEYS = {
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "candidateCount",
    "seed",
    "stopSequences",
    "presencePenalty",
    "frequencyPenalty",
    "responseMimeType",
    "responseJsonSchema",
    "thinkingConfig",
}


def vocabulary(value: Any) -> set[str]:
    """Every key used in a body, free-form values aside."""
    keys: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            keys.add(key)
            if key not in FREE_FORM:
                keys |= vocabulary(inner)
    elif isinstance(value, list):
        for inner in value:
            keys |= vocabulary(inner)
    return keys


# passthrough-fields.json is about forwarding unknown fields: its made-up keys are not vocabulary.
NATIVE_VOCABULARY = set().union(
    *(vocabulary(load(p)) for p in GEMINI_NATIVE.glob("*.json") if p.name != "passthrough-fields.json")
)


def assert_gemini_shape(body: dict[str, Any]) -> None:
    assert set(body) <= {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig"}
    assert vocabulary(body) <= NATIVE_VOCABULARY | DOCUMENTED_ELSEWHERE
    roles = [c["role"] for c in body["contents"]]
    assert set(roles) <= {"user", "model"}
    assert all(a != b for a, b in itertools.pairwise(roles)), f"roles must alternate: {roles}"
    previous: dict[str, Any] | None = None
    for content in body["contents"]:
        assert set(content) == {"role", "parts"} and content["parts"]
        for part in content["parts"]:
            assert len(set(part) & PART_DATA) == 1, part
            assert set(part) - PART_DATA <= {"thought", "thoughtSignature"}
            if "inlineData" in part:
                assert set(part["inlineData"]) == {"mimeType", "data"}
            if "fileData" in part:
                assert set(part["fileData"]) == {"mimeType", "fileUri"}
            if "functionCall" in part:
                assert content["role"] == "model"
                assert set(part["functionCall"]) <= {"name", "args", "id"}
                assert isinstance(part["functionCall"]["args"], dict)
            if "functionResponse" in part:
                response = part["functionResponse"]
                assert content["role"] == "user" and set(response) <= {"name", "id", "response"}
                assert isinstance(response["response"], dict)
                assert previous is not None and previous["role"] == "model"
                calls = [p["functionCall"] for p in previous["parts"] if "functionCall" in p]
                assert any(c["name"] == response["name"] and c.get("id") == response.get("id") for c in calls)
        previous = content
    if "systemInstruction" in body:
        system = body["systemInstruction"]
        assert set(system) == {"parts"} and all(set(p) == {"text"} for p in system["parts"])
    for tool in body.get("tools", []):
        assert set(tool) == {"functionDeclarations"}
        for declaration in tool["functionDeclarations"]:
            assert set(declaration) <= {"name", "description", "parametersJsonSchema"}
    if "toolConfig" in body:
        config = body["toolConfig"]["functionCallingConfig"]
        assert config["mode"] in {"AUTO", "ANY", "NONE"}
        assert set(config) <= {"mode", "allowedFunctionNames"}
    assert set(body.get("generationConfig", {})) <= GENERATION_KEYS


@pytest.mark.parametrize("path", COMPLETIONS, ids=[p.stem for p in COMPLETIONS])
def test_every_completions_fixture_becomes_a_valid_gemini_body(path: Path) -> None:
    chat = load(path)
    body = gemini_request(chat)
    assert_gemini_shape(body)
    systems = [m["content"] for m in chat["messages"] if m["role"] in ("system", "developer")]
    assert [p["text"] for p in body.get("systemInstruction", {}).get("parts", [])] == systems
    json.dumps(body)  # plain JSON all the way down


def test_basic_request() -> None:
    assert gemini_request(completion("basic")) == {
        "contents": [{"role": "user", "parts": [{"text": "What is the name of the LLM provider?"}]}],
        "systemInstruction": {"parts": [{"text": "You are a helpful assistant."}]},
    }


def test_text_conversation_matches_native_text_fixture() -> None:
    expected = native("text")
    chat = {
        "model": "gemini-2.5-flash",
        "messages": [
            {"role": "developer", "content": "Answer in one sentence."},
            {"role": "user", "content": "Who won the 2018 world cup?"},
            {"role": "assistant", "content": "France."},
            {"role": "user", "content": [{"type": "text", "text": "And the runner up?"}]},
        ],
        "temperature": 0.7,
        "top_p": 0.95,
        "top_k": 40,
        "max_completion_tokens": 1024,
        "stop": "END",
        "n": 1,
        "seed": 42,
    }
    body = gemini_request(chat)
    assert body["contents"] == expected["contents"]
    assert body["systemInstruction"] == expected["systemInstruction"]
    assert body["generationConfig"] == expected["generationConfig"]


def test_generation_config_fields() -> None:
    body = gemini_request(completion("generation-config"))
    assert body["generationConfig"] == {
        "maxOutputTokens": 1000,
        "temperature": 0.7,
        "topP": 0.9,
        "topK": 40,
        "candidateCount": 3,
        "seed": 42,
        "presencePenalty": 0.1,
        "frequencyPenalty": 0.2,
        "stopSequences": ["\n\n", "END"],
        "responseMimeType": "application/json",
    }
    # A named tool_choice is exactly the native fixture's toolConfig.
    assert body["toolConfig"] == native("tools")["toolConfig"]
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Get the current weather in a location",
                    "parametersJsonSchema": {
                        "type": "object",
                        "properties": {"location": {"type": "string"}},
                        "required": ["location"],
                    },
                }
            ]
        }
    ]


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    chat = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10, "max_completion_tokens": 20}
    assert gemini_request(chat)["generationConfig"] == {"maxOutputTokens": 20}


def test_full_request() -> None:
    body = gemini_request(completion("full"))
    assert body["systemInstruction"]["parts"][0]["text"].startswith("You are a helpful assistant that specializes")
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["contents"][1]["parts"] == [{"text": completion("full")["messages"][2]["content"]}]
    assert body["contents"][2]["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
    names = [d["name"] for d in body["tools"][0]["functionDeclarations"]]
    assert names == ["get_weather", "calculate_fibonacci"]  # tools, then the legacy `functions`
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["my_function"]}}
    config = body["generationConfig"]
    assert config["candidateCount"] == 3 and config["seed"] == 42 and config["responseMimeType"] == "application/json"
    assert "user" not in json.dumps(body["generationConfig"]) and "logit" not in json.dumps(body)


def test_inline_image_matches_native_shape() -> None:
    body = gemini_request(completion("image-inline"))
    parts = body["contents"][0]["parts"]
    assert parts == [
        {"text": "What's in this image?"},
        {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQSkZJRgABAQ=="}},  # image/jpg normalised
    ]
    native_part = native("image-inline")["contents"][0]["parts"][1]
    assert set(parts[1]) == set(native_part) and set(parts[1]["inlineData"]) == set(native_part["inlineData"])


@pytest.mark.parametrize(
    ("name", "file_data"),
    [
        ("image-file", {"mimeType": "image/png", "fileUri": "gs://my-bucket/photo.png"}),
        ("image-url", {"mimeType": "image/png", "fileUri": "https://example.com/image.png"}),
    ],
)
def test_remote_images_become_file_data(name: str, file_data: dict[str, str]) -> None:
    parts = gemini_request(completion(name))["contents"][0]["parts"]
    assert parts[1] == {"fileData": file_data}
    assert set(parts[1]["fileData"]) == set(native("image-inline")["contents"][0]["parts"][2]["fileData"])


def test_remote_image_mime_guess_defaults_to_jpeg() -> None:
    content = [
        {"type": "image_url", "image_url": {"url": "https://x.test/a.webp?sig=1"}},
        {"type": "image_url", "image_url": {"url": "https://x.test/render"}},
        {"type": "image_url", "image_url": "data:image/gif;base64,R0lG"},
    ]
    parts = gemini_request({"messages": [{"role": "user", "content": content}]})["contents"][0]["parts"]
    assert [p.get("fileData", p.get("inlineData"))["mimeType"] for p in parts] == [
        "image/webp",
        "image/jpeg",
        "image/gif",
    ]


def test_tool_call_request() -> None:
    body = gemini_request(completion("tool-call"))
    assert body["contents"][1] == {
        "role": "model",
        "parts": [
            {
                "functionCall": {
                    "name": "get_weather",
                    "args": {"format": "celsius", "location": "Columbus, OH"},
                    "id": "call_iMGPsr4Xx1u0G5sOzFsTCbQU",
                },
                # a model name that is not Gemini's is taken for the newest Gemini, which needs signed calls
                "thoughtSignature": SKIP_SIGNATURE,
            },
            {"functionCall": {"name": "get_time", "args": {}, "id": "call_5rQmXtLpZ9wKvNbJhGyDsFcE"}},  # "" -> {}
        ],
    }
    assert body["contents"][2]["parts"][1] == {
        "functionResponse": {
            "name": "get_time",
            "response": {"time": "2026-08-12T12:00:00Z"},
            "id": "call_5rQmXtLpZ9wKvNbJhGyDsFcE",
        }
    }


def test_parallel_tool_results_merge_into_one_turn_and_names_come_from_the_calls() -> None:
    body = gemini_request(completion("parallel-tool-call"))
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert [p["functionCall"]["args"]["location"] for p in body["contents"][1]["parts"]] == [
        "Columbus, OH",
        "New York, NY",
    ]
    responses = [p["functionResponse"] for p in body["contents"][2]["parts"]]
    assert responses == [
        {"name": "get_weather", "response": {"temperature": 15, "condition": "Cloudy"}, "id": "call_1"},
        {"name": "get_weather", "response": {"temperature": 22, "condition": "Sunny"}, "id": "call_2"},
    ]


def test_multi_turn_tools_alternate() -> None:
    body = gemini_request(completion("multi-turn-tools"))
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user", "model", "user"]
    assert body["contents"][4]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"temp": 9}, "id": "call_2"}}
    ]
    assert "toolConfig" not in body  # no tool_choice: Gemini's default (AUTO)


def test_non_object_tool_results_are_wrapped() -> None:
    chat = {
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {
                "role": "tool",
                "tool_call_id": "a",
                "content": [{"type": "text", "text": "plain "}, {"type": "text", "text": "text"}],
            },
            {"role": "user", "content": "and?"},
        ]
    }
    body = gemini_request(chat)
    assert body["contents"][2]["parts"] == [
        {"functionResponse": {"name": "f", "response": {"content": "plain text"}, "id": "a"}},
        {"text": "and?"},  # a user message right after tool results joins their turn
    ]


def test_tools_shape_matches_native_fixture_and_signature_goes_back_on_the_call() -> None:
    expected = native("tools")
    chat = {
        "model": "gemini-2.5-pro",
        "messages": [
            {"role": "user", "content": "What is the weather in Boston?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "fc_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location":"Boston","unit":"celsius"}'},
                        "extra_content": {"google": {"thought_signature": "CjEBc2lnbmF0dXJlLWZvci10aGUtY2FsbA=="}},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "fc_1", "content": '{"temperature": 12, "conditions": "rain"}'},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Get the current weather for a city",
                    "parameters": expected["tools"][0]["functionDeclarations"][0]["parameters"],
                    "strict": True,
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    }
    body = gemini_request(chat)
    assert body["contents"] == expected["contents"]
    assert body["toolConfig"] == expected["toolConfig"]
    ours = body["tools"][0]["functionDeclarations"][0]
    theirs = expected["tools"][0]["functionDeclarations"][0]
    assert ours["parametersJsonSchema"] == theirs["parameters"]
    assert {k: v for k, v in ours.items() if k != "parametersJsonSchema"} == {
        k: theirs[k] for k in ("name", "description")
    }


def test_json_schema_keywords_survive_in_parameters_json_schema() -> None:
    parameters = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"item": {"$ref": "#/$defs/Item"}, "note": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
        "$defs": {"Item": {"type": "object", "properties": {"id": {"type": "integer"}}}},
        "additionalProperties": False,
    }
    chat = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": parameters, "strict": True}}],
    }
    declaration = gemini_request(chat)["tools"][0]["functionDeclarations"][0]
    assert declaration == {"name": "f", "parametersJsonSchema": {k: v for k, v in parameters.items() if k != "$schema"}}


@pytest.mark.parametrize(
    ("tool_choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        ({"type": "function", "function": {"name": "b"}}, {"mode": "ANY", "allowedFunctionNames": ["b"]}),
    ],
)
def test_tool_choice(tool_choice: Any, config: dict[str, Any]) -> None:
    tools = [{"type": "function", "function": {"name": n}} for n in "ab"]
    chat = {"messages": [{"role": "user", "content": "hi"}], "tools": tools, "tool_choice": tool_choice}
    body = gemini_request(chat)
    assert body["toolConfig"] == {"functionCallingConfig": config}
    assert body["tools"] == [{"functionDeclarations": [{"name": "a"}, {"name": "b"}]}]


def test_allowed_tools_filters_the_declarations() -> None:
    tools = [{"type": "function", "function": {"name": n}} for n in "abc"]
    choice = {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "auto", "tools": [{"type": "function", "function": {"name": "c"}}]},
    }
    body = gemini_request({"messages": [{"role": "user", "content": "hi"}], "tools": tools, "tool_choice": choice})
    assert body["tools"] == [{"functionDeclarations": [{"name": "c"}]}]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}


def test_tool_choice_without_tools_sends_no_tool_config() -> None:
    body = gemini_request({"messages": [{"role": "user", "content": "hi"}], "tool_choice": "required"})
    assert "tools" not in body and "toolConfig" not in body


def test_structured_output_uses_response_json_schema() -> None:
    chat = completion("structured-output")
    config = gemini_request(chat)["generationConfig"]
    schema = chat["response_format"]["json_schema"]["schema"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": schema}  # $ref/$defs kept
    assert config["responseMimeType"] == native("structured-output")["generationConfig"]["responseMimeType"]


@pytest.mark.parametrize(
    ("model", "effort", "thinking"),
    [
        ("gpt-3.5-turbo", "medium", {"thinkingLevel": "medium", "includeThoughts": True}),  # reasoning.json
        ("gemini-3-flash-preview", "minimal", {"thinkingLevel": "minimal", "includeThoughts": True}),
        ("gemini-3-pro-preview", "medium", {"thinkingLevel": "high", "includeThoughts": True}),
        ("gemini-3-pro-preview", "minimal", {"thinkingLevel": "low", "includeThoughts": True}),
        ("gemini-2.5-flash", "low", {"thinkingBudget": 1024, "includeThoughts": True}),
        ("gemini-2.5-flash", "medium", {"thinkingBudget": 8192, "includeThoughts": True}),
        ("gemini-2.5-flash", "xhigh", {"thinkingBudget": 24576, "includeThoughts": True}),
        ("gemini-2.5-pro", "xhigh", {"thinkingBudget": 32768, "includeThoughts": True}),
        ("gemini-2.5-flash", "none", {"thinkingBudget": 0}),
        ("gemini-2.5-pro", "none", {"thinkingBudget": 128}),
    ],
)
def test_reasoning_effort(model: str, effort: str, thinking: dict[str, Any]) -> None:
    chat = {"model": model, "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": effort}
    assert gemini_request(chat)["generationConfig"]["thinkingConfig"] == thinking


def test_reasoning_fixtures() -> None:
    assert gemini_request(completion("reasoning"))["generationConfig"] == {
        "thinkingConfig": {"thinkingLevel": "medium", "includeThoughts": True}
    }
    assert gemini_request(completion("reasoning_max"))["generationConfig"] == {
        "thinkingConfig": {"thinkingLevel": "high", "includeThoughts": True}
    }
    # The native thinking fixture's config, from a Gemini 3 model at high effort.
    chat = {"model": "gemini-3-pro-preview", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "high"}
    assert (
        gemini_request(chat)["generationConfig"]["thinkingConfig"]
        == native("thinking")["generationConfig"]["thinkingConfig"]
    )


@pytest.mark.parametrize("name", ["reasoning_replay", "reasoning_replay_unsigned"])
def test_replayed_reasoning_is_not_sent(name: str) -> None:
    chat = completion(name)
    body = gemini_request(chat)
    assert body["contents"][1] == {"role": "model", "parts": [{"text": chat["messages"][1]["content"]}]}
    assert "reasoning" not in json.dumps(body) and "SIG-replay" not in json.dumps(body)


def test_gemini_3_unsigned_calls_get_the_validator_bypass_on_the_first_call_only() -> None:
    calls = [{"id": f"c{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}} for i in range(2)]
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "c0", "content": "1"},
        {"role": "tool", "tool_call_id": "c1", "content": "2"},
    ]
    model_parts = gemini_request({"model": "gemini-3-pro-preview", "messages": messages})["contents"][1]["parts"]
    assert [p.get("thoughtSignature") for p in model_parts] == [SKIP_SIGNATURE, None]
    older = gemini_request({"model": "gemini-2.5-pro", "messages": messages})["contents"][1]["parts"]
    assert all("thoughtSignature" not in p for p in older)
    calls[0]["extra_content"] = {"google": {"thought_signature": "real"}}
    signed = gemini_request({"model": "gemini-3-pro-preview", "messages": messages})["contents"][1]["parts"]
    assert [p.get("thoughtSignature") for p in signed] == ["real", None]


def test_function_call_ids_can_be_left_out_for_vertex() -> None:
    body = gemini_request(completion("parallel-tool-call"), function_call_ids=False)
    parts = [p for c in body["contents"] for p in c["parts"]]
    assert len(parts) == 5 and all("id" not in p.get("functionCall", p.get("functionResponse", {})) for p in parts)
    assert [p["functionResponse"]["name"] for p in body["contents"][2]["parts"]] == ["get_weather", "get_weather"]


# --- responses ---------------------------------------------------------------------------------------------------


def test_basic_response() -> None:
    result = chat_response(load(RESPONSES / "basic.json"), "fallback")
    parsed = ChatCompletion.model_validate(result)
    assert parsed.id == "resp-basic-1" and parsed.model == "gemini-2.5-pro"
    assert parsed.choices[0].message.content == "The provider is Gemini."
    assert parsed.choices[0].finish_reason == "stop"
    assert result["usage"] == {"prompt_tokens": 8, "completion_tokens": 6, "total_tokens": 14}


def test_blocked_prompt_response() -> None:
    result = chat_response(load(RESPONSES / "blocked.json"), "fallback")
    parsed = ChatCompletion.model_validate(result)
    assert result["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": "content_filter"}
    ]
    assert parsed.id.startswith("chatcmpl-")  # no responseId: made up
    assert result["usage"] == {"prompt_tokens": 12, "completion_tokens": 0, "total_tokens": 12}


def test_reasoning_response() -> None:
    result = chat_response(load(RESPONSES / "reasoning.json"), "fallback")
    ChatCompletion.model_validate(result)
    message = result["choices"][0]["message"]
    assert message == {
        "role": "assistant",
        "content": "It is sunny.",
        "reasoning_content": "Let me think about the weather.",
    }
    assert result["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 17,
        "total_tokens": 27,
        "completion_tokens_details": {"reasoning_tokens": 5},
    }


def test_tool_response() -> None:
    result = chat_response(load(RESPONSES / "tool.json"), "fallback")
    parsed = ChatCompletion.model_validate(result)
    choice = parsed.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert result["choices"][0]["message"]["tool_calls"] == [
        {
            "id": "fc_get_weather_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"location":"Columbus"}'},
        }
    ]
    assert result["usage"]["total_tokens"] == 28


def test_parallel_calls_without_ids_get_made_up_ids() -> None:
    parts = [
        {"text": "Checking both."},
        {"functionCall": {"name": "get_weather", "args": {"location": "Columbus"}}, "thoughtSignature": "sig-1"},
        {"functionCall": {"name": "get_weather", "args": {"location": "Berlin"}}},
    ]
    body = {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}]}
    result = chat_response(body, "gemini-2.5-flash")
    parsed = ChatCompletion.model_validate(result)
    assert parsed.model == "gemini-2.5-flash"  # no modelVersion: the caller's model
    message = result["choices"][0]["message"]
    assert message["content"] == "Checking both."
    assert [c["id"] for c in message["tool_calls"]] == ["call_0", "call_1"]
    assert [json.loads(c["function"]["arguments"]) for c in message["tool_calls"]] == [
        {"location": "Columbus"},
        {"location": "Berlin"},
    ]
    assert message["tool_calls"][0]["extra_content"] == {"google": {"thought_signature": "sig-1"}}
    assert "extra_content" not in message["tool_calls"][1]
    assert result["choices"][0]["finish_reason"] == "tool_calls"
    assert "usage" not in result


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("OTHER", "stop"),
    ],
)
def test_finish_reasons(reason: str, expected: str) -> None:
    body = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}
    result = chat_response(body, "m")
    ChatCompletion.model_validate(result)
    assert result["choices"][0]["finish_reason"] == expected


def test_cached_tokens_and_several_candidates() -> None:
    body = {
        "candidates": [
            {"content": {"parts": [{"text": "a"}]}, "finishReason": "STOP", "index": 0},
            {"content": {"parts": [{"text": "b"}]}, "finishReason": "MAX_TOKENS", "index": 1},
        ],
        "usageMetadata": {
            "promptTokenCount": 100,
            "cachedContentTokenCount": 64,
            "candidatesTokenCount": 2,
            "totalTokenCount": 102,
        },
    }
    result = chat_response(body, "m")
    ChatCompletion.model_validate(result)
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in result["choices"]] == [
        (0, "a", "stop"),
        (1, "b", "length"),
    ]
    assert result["usage"] == {
        "prompt_tokens": 100,
        "completion_tokens": 2,
        "total_tokens": 102,
        "prompt_tokens_details": {"cached_tokens": 64},
    }


# --- thought signatures round trip ----------------------------------------------------------------------------------


def test_thought_signatures_survive_a_round_trip_through_the_openai_sdk() -> None:
    """The model's call and text signatures go out in the answer, through a client's SDK objects, and back."""
    answer = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {
                            "functionCall": {"name": "get_weather", "args": {"location": "Boston"}},
                            "thoughtSignature": "CALL-SIG",
                        }
                    ],
                },
                "finishReason": "STOP",
            }
        ]
    }
    message = ChatCompletion.model_validate(chat_response(answer, "gemini-3-pro-preview")).choices[0].message
    assistant = message.model_dump(exclude_none=True)  # what a client appends to its history
    call_id = assistant["tool_calls"][0]["id"]
    text_answer = {"candidates": [{"content": {"parts": [{"text": "Rainy.", "thoughtSignature": "TEXT-SIG"}]}}]}
    final = (
        ChatCompletion.model_validate(chat_response(text_answer, "m")).choices[0].message.model_dump(exclude_none=True)
    )
    chat = {
        "model": "gemini-3-pro-preview",
        "messages": [
            {"role": "user", "content": "Weather in Boston?"},
            assistant,
            {"role": "tool", "tool_call_id": call_id, "content": '{"sky": "rain"}'},
            final,
            {"role": "user", "content": "Thanks"},
        ],
    }
    contents = gemini_request(chat)["contents"]
    assert contents[1]["parts"] == [
        {
            "functionCall": {"name": "get_weather", "args": {"location": "Boston"}, "id": call_id},
            "thoughtSignature": "CALL-SIG",
        }
    ]
    assert contents[3]["parts"] == [{"text": "Rainy.", "thoughtSignature": "TEXT-SIG"}]
    # The text part of the native thinking fixture is the shape that goes back.
    assert set(contents[3]["parts"][0]) == set(native("thinking")["contents"][1]["parts"][1])


# --- streaming ------------------------------------------------------------------------------------------------------


def sse_events(text: str) -> list[dict[str, Any]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        data = [line[5:].strip() for line in block.split("\n") if line.startswith("data:")]
        if data:
            events.append(json.loads("\n".join(data)))
    return events


def run_stream(
    events: list[dict[str, Any]], model: str = "m", include_usage: bool = True
) -> tuple[StreamToChat, list[dict[str, Any]]]:
    stream = StreamToChat(model, include_usage)
    chunks = [chunk for event in events for chunk in stream.feed(event)] + stream.finish()
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    return stream, chunks


def assemble(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """What a client rebuilds from the chunks of choice 0."""
    out: dict[str, Any] = {
        "role": None,
        "content": "",
        "reasoning": "",
        "tool_calls": {},
        "finish": None,
        "usage": None,
    }
    for chunk in chunks:
        if chunk.get("usage"):
            assert chunk["choices"] == [] and out["usage"] is None
            out["usage"] = chunk["usage"]
        for choice in chunk["choices"]:
            delta = choice["delta"]
            if "role" in delta:
                assert out["role"] is None, "the role comes once"
                out["role"] = delta["role"]
            out["content"] += delta.get("content") or ""
            out["reasoning"] += delta.get("reasoning_content") or ""
            for call in delta.get("tool_calls") or []:
                slot = out["tool_calls"].setdefault(call["index"], {"id": None, "name": "", "arguments": ""})
                slot["id"] = call.get("id") or slot["id"]
                slot["name"] += call["function"].get("name") or ""
                slot["arguments"] += call["function"].get("arguments") or ""
            if choice["finish_reason"]:
                out["finish"] = choice["finish_reason"]
    return out


def test_recorded_tool_stream() -> None:
    events = sse_events((RESPONSES / "stream_tool.json").read_text())
    assert len(events) == 1
    _, chunks = run_stream(events, "fallback")
    assert {c["id"] for c in chunks} == {"gemini-tool"} and {c["model"] for c in chunks} == {"gemini-2.5-pro"}
    result = assemble(chunks)
    assert result["role"] == "assistant"
    assert result["tool_calls"] == {0: {"id": "fc_native", "name": "get_weather", "arguments": '{"location":"Tokyo"}'}}
    assert result["finish"] == "tool_calls"
    assert result["usage"] == {"prompt_tokens": 15, "completion_tokens": 12, "total_tokens": 27}
    assert chunks[-1]["usage"] == result["usage"]  # usage comes last, from finish()
    # The whole call travels in one delta.
    call_deltas = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("tool_calls")]
    assert len(call_deltas) == 1


def test_usage_chunk_only_when_asked_but_usage_always_kept() -> None:
    events = sse_events((RESPONSES / "stream_tool.json").read_text())
    stream, chunks = run_stream(events, include_usage=False)
    assert all("usage" not in c for c in chunks)
    assert stream.usage == {"prompt_tokens": 15, "completion_tokens": 12, "total_tokens": 27}


def test_text_stream_keeps_the_last_usage() -> None:
    def event(parts: list[dict[str, Any]], usage: dict[str, int], finish: str | None = None) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}}
        if finish:
            candidate["finishReason"] = finish
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": "gemini-2.5-flash",
            "responseId": "r1",
        }

    events = [
        event(
            [{"text": "Weighing it.", "thought": True}],
            {"promptTokenCount": 9, "thoughtsTokenCount": 4, "totalTokenCount": 13},
        ),
        event(
            [{"text": "Hel"}],
            {"promptTokenCount": 9, "candidatesTokenCount": 1, "thoughtsTokenCount": 4, "totalTokenCount": 14},
        ),
        event(
            [{"text": "lo."}, {"text": "", "thoughtSignature": "S"}],
            {"promptTokenCount": 9, "candidatesTokenCount": 3, "thoughtsTokenCount": 4, "totalTokenCount": 16},
            "STOP",
        ),
    ]
    _, chunks = run_stream(events)
    result = assemble(chunks)
    assert (result["reasoning"], result["content"], result["finish"]) == ("Weighing it.", "Hello.", "stop")
    assert result["usage"] == {
        "prompt_tokens": 9,
        "completion_tokens": 7,
        "total_tokens": 16,
        "completion_tokens_details": {"reasoning_tokens": 4},
    }
    assert sum(1 for c in chunks if c.get("usage")) == 1
    signed = [c for c in chunks if c["choices"] and "extra_content" in c["choices"][0]["delta"]]
    assert [c["choices"][0]["delta"]["extra_content"] for c in signed] == [{"google": {"thought_signature": "S"}}]
    assert {c["id"] for c in chunks} == {"r1"}


def test_stream_calls_in_separate_events_get_consecutive_indexes_and_ids() -> None:
    def call(location: str) -> dict[str, Any]:
        return {"functionCall": {"name": "get_weather", "args": {"location": location}}}

    events = [
        {"candidates": [{"content": {"parts": [call("Columbus")]}}]},
        {
            "candidates": [
                {"content": {"parts": [{**call("Berlin"), "thoughtSignature": "late"}]}, "finishReason": "STOP"}
            ]
        },
    ]
    _, chunks = run_stream(events)
    result = assemble(chunks)
    assert result["tool_calls"] == {
        0: {"id": "call_0", "name": "get_weather", "arguments": '{"location":"Columbus"}'},
        1: {"id": "call_1", "name": "get_weather", "arguments": '{"location":"Berlin"}'},
    }
    assert result["finish"] == "tool_calls" and result["usage"] is None
    second = chunks[1]["choices"][0]["delta"]["tool_calls"][0]
    assert second["extra_content"] == {"google": {"thought_signature": "late"}}
    assert len({c["id"] for c in chunks}) == 1  # a made-up id, the same on every chunk


def test_blocked_stream() -> None:
    _, chunks = run_stream(
        [
            {
                "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5},
            }
        ]
    )
    result = assemble(chunks)
    assert (result["role"], result["content"], result["finish"]) == ("assistant", "", "content_filter")
    assert result["usage"] == {"prompt_tokens": 5, "completion_tokens": 0, "total_tokens": 5}


# --- embeddings -----------------------------------------------------------------------------------------------------


def test_embeddings_request_single_input_with_dimensions() -> None:
    request = load(SAMPLES / "requests" / "embeddings" / "basic.json")
    assert embeddings_request(request, "gemini-embedding-001") == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "hello world"}]},
                "outputDimensionality": 1024,
            }
        ]
    }


def test_embeddings_request_array_and_gemini_options() -> None:
    assert embeddings_request(
        load(SAMPLES / "requests" / "embeddings" / "array.json"), "models/text-embedding-004"
    ) == {
        "requests": [
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "hello"}]}},
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "world"}]}},
        ]
    }
    full = embeddings_request(load(SAMPLES / "requests" / "embeddings" / "full.json"), "text-embedding-004")
    assert full["requests"][1] == {
        "model": "models/text-embedding-004",
        "content": {"parts": [{"text": "world"}]},
        "taskType": "RETRIEVAL_DOCUMENT",
        "title": "My Document",
        "outputDimensionality": 512,
    }


@pytest.mark.parametrize("bad", [[1, 2, 3], [[1, 2]], [], None])
def test_embeddings_request_rejects_token_input(bad: Any) -> None:
    with pytest.raises(ValueError, match="string"):
        embeddings_request({"input": bad}, "m")


def test_embeddings_response() -> None:
    vector = load(SAMPLES / "response" / "openai" / "gemini-embeddings.json")["data"][0]["embedding"]
    body = {"embeddings": [{"values": vector}, {"values": [0.5, -0.25]}]}
    result = embeddings_response(body, "models/gemini-embedding-001")
    parsed = CreateEmbeddingResponse.model_validate(result)
    assert parsed.model == "gemini-embedding-001"
    assert [d.embedding for d in parsed.data] == [vector, [0.5, -0.25]]
    assert [d.index for d in parsed.data] == [0, 1]
    assert result["usage"] == {"prompt_tokens": 0, "total_tokens": 0}  # batchEmbedContents reports no usage


def test_embeddings_response_from_vertex_predict() -> None:
    body = load(SAMPLES / "response" / "vertex" / "embeddings.json")
    result = embeddings_response(body, "text-embedding-005")
    parsed = CreateEmbeddingResponse.model_validate(result)
    assert parsed.data[1].embedding == [0.024810791015625, 0.070068359375, 0.04156494140625]
    assert result["usage"] == {"prompt_tokens": 9, "total_tokens": 9}


def test_embeddings_response_base64() -> None:
    # The SDK decodes base64 before building its types, so the shape is checked by hand here.
    result = embeddings_response({"embeddings": [{"values": [0.5, -2.0, 1.25]}]}, "m", encoding_format="base64")
    assert result["data"][0]["object"] == "embedding" and isinstance(result["data"][0]["embedding"], str)
    raw = base64.b64decode(result["data"][0]["embedding"])
    assert list(struct.unpack("<3f", raw)) == [0.5, -2.0, 1.25]


# --- errors ---------------------------------------------------------------------------------------------------------


def google_error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            400,
            json.dumps(google_error(400, "INVALID_ARGUMENT", "Bad field")).encode(),
            ("invalid_request_error", "Bad field"),
        ),
        (401, json.dumps(google_error(401, "UNAUTHENTICATED", "No key")).encode(), ("authentication_error", "No key")),
        (403, json.dumps(google_error(403, "PERMISSION_DENIED", "Nope")).encode(), ("permission_error", "Nope")),
        (404, json.dumps(google_error(404, "NOT_FOUND", "No model")).encode(), ("not_found_error", "No model")),
        # streamGenerateContent without alt=sse: an array of error objects
        (429, json.dumps([google_error(429, "RESOURCE_EXHAUSTED", "Quota")]).encode(), ("rate_limit_error", "Quota")),
        (200, json.dumps(google_error(503, "UNAVAILABLE", "Overloaded")).encode(), ("server_error", "Overloaded")),
        (500, json.dumps(google_error(500, "SOMETHING_NEW", "Odd")).encode(), ("server_error", "Odd")),
        (502, b"<html>Bad Gateway</html>", ("server_error", "<html>Bad Gateway</html>")),
        (503, b"", ("server_error", "HTTP 503")),
        (404, b'{"unexpected": true}', ("not_found_error", "HTTP 404")),
        (400, b"[]", ("invalid_request_error", "HTTP 400")),
    ],
)
def test_error_of(status: int, body: bytes, expected: tuple[str, str]) -> None:
    assert error_of(status, body) == expected
