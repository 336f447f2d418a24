"""`mcp-gateway llm prices`: the LLM price table in Arize Phoenix's form, printed or pushed."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..config import load_config


def prices(args: argparse.Namespace) -> int:
    from ..llm.phoenix_prices import PhoenixError, phoenix_models, push

    config = load_config(args.config)
    if config.llm is None or not config.llm.prices:
        print(f"error: {args.config} has no llm.prices", file=sys.stderr)
        return 2
    models = phoenix_models(config.llm.prices)
    if not args.phoenix:
        print(json.dumps(models, indent=2))
        return 0
    try:
        for line in push(args.phoenix, models, os.environ.get(args.api_key_env)):
            print(line)
    except PhoenixError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
