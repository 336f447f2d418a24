"""LLM bridge: one OpenAI- and Anthropic-compatible front for many LLM providers.

A library the gateway mounts; it never imports `mcp_gateway` (ARCHITECTURE.md rule 1). The providers,
translation and routing land with their own issue; this package reserves the name and the boundary.
"""
