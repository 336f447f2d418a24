"""The `mcp-gateway` subcommands that are more than a few lines (cli.py parses and dispatches)."""
