"""LLM bridge: one OpenAI- and Anthropic-compatible front for many LLM providers.

A library the gateway mounts; it never imports `mcp_gateway` (docs/ARCHITECTURE.md, "Dependency rules"). The providers,
translation and routing land with their own issue; this package reserves the name and the boundary.
"""
