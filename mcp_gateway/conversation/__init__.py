"""The conversation layer: MCP as the client speaks it, without any transport.

What every front needs and none should write again lives here: reading one JSON-RPC message (shape, ids,
params), telling the protocol eras apart, requests in flight and their cancellation, requests the gateway
sends the client and the answers that come back, what a handshake-era session remembers between requests,
`subscriptions/listen` streams, keep-alive ticks, and turning a call's `Result` into its JSON-RPC answer.
The fronts (front/http.py and its era modules, front/stdio.py) only move bytes.
"""
