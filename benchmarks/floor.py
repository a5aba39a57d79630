"""The framework floor for (e/f): Starlette on uvicorn answering captured bytes.

It serves ``GET /api/timeseries`` with the body and headers tsgate gave for the load
query, on the same server stack tsgate uses, with nothing else to do: what the load
client measures against it is the cost of HTTP, ASGI and routing alone, on this machine
in this run. tsgate's figures are read against it.

Run: ``python -m benchmarks.floor --port P --answer FILE`` (FILE: msgpack
``{"body": bytes, "media_type": str, "headers": {name: value}}``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


class Answer(msgspec.Struct):
    body: bytes
    media_type: str
    headers: dict[str, str]


def create_floor(answer: Answer) -> Starlette:
    async def timeseries(request: Request) -> Response:
        return Response(answer.body, headers=answer.headers, media_type=answer.media_type)

    async def health(request: Request) -> Response:
        return Response(b'{"status":"healthy"}', media_type="application/json")

    return Starlette(
        routes=[
            Route("/api/timeseries", timeseries, methods=["GET"]),
            Route("/api/health", health, methods=["GET"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--answer", type=Path, required=True)
    args = parser.parse_args()
    answer = msgspec.msgpack.decode(args.answer.read_bytes(), type=Answer)
    # the same server settings as `tsgate serve`
    uvicorn.run(
        create_floor(answer),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
