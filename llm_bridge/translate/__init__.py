"""Translation between the canonical model and each provider's wire format: pure functions over dicts.

The canonical model is the OpenAI Chat Completions wire format, because most clients and most backends
speak it already and an OpenAI-to-OpenAI exchange then needs no translation at all:

- a request is a `/v1/chat/completions` body (`model`, `messages`, `tools`, `tool_choice`, `stream`, ...);
- a response is a `chat.completion` object;
- a stream is a sequence of `chat.completion.chunk` objects; usage travels in a last chunk with
  `"choices": []` and a `usage` object;
- usage is `{prompt_tokens, completion_tokens, total_tokens, prompt_tokens_details: {cached_tokens,
  cache_creation_tokens}, completion_tokens_details: {reasoning_tokens}}` (details only when known);
- reasoning text is `message.reasoning_content` (and `delta.reasoning_content` in streams), the field
  vLLM, DeepSeek and most OpenAI-compatible servers use.

Each provider module offers the same shape of functions:
`<provider>_request(chat) -> body`, `chat_response(body, model) -> chat.completion`, a `StreamToChat`
class whose `feed(...)` returns the chunks one provider event yields, and `error_of(status, body)`.
The Anthropic module also translates the other way for the `/v1/messages` front door.
No I/O here: providers/ does the HTTP, this package only reshapes data.
"""
