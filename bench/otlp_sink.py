"""An OTLP/HTTP endpoint that accepts and discards: stands in for a collector on another machine, so a
traced benchmark run measures the gateway's tracing cost, not a Python receiver decoding protobuf on the
same small box. `python bench/otlp_sink.py --port N` prints `READY <port>` and counts what it received."""

from __future__ import annotations

import argparse

from aiohttp import web


async def accept(request: web.Request) -> web.Response:
    body = await request.read()
    request.app["received"] += 1
    request.app["bytes"] += len(body)
    return web.Response(body=b"", content_type="application/x-protobuf")


async def stats(request: web.Request) -> web.Response:
    return web.json_response({"exports": request.app["received"], "bytes": request.app["bytes"]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app["received"] = app["bytes"] = 0
    app.router.add_post("/v1/{signal}", accept)
    app.router.add_get("/stats", stats)
    web.run_app(app, host="127.0.0.1", port=args.port, print=lambda *_: print(f"READY {args.port}", flush=True))


if __name__ == "__main__":
    main()
