"""HTTP fronts: the OpenAI-compatible routes and the Anthropic-compatible `/v1/messages`."""
