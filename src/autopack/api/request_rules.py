"""Rules every request meets before routing (ASGI middleware).

- A path holding an encoded `/` (`%2F`) is refused with 422: the server decodes it
  before routing, so `/runs/a%2Fevents` reached another endpoint of run `a` and
  `/runs/a%2Fphases%2FP1/update_status` moved a phase, where an id with `/` is no id.
- `HEAD` is answered as `GET` without the body (RFC 9110 asks every general-purpose
  server to support it).
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RequestRules:
    """ASGI middleware applying the rules above."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = scope.get("raw_path") or scope["path"].encode()
        if b"%2f" in raw.lower():
            await _refuse_encoded_slash(send)
            return
        if scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b""})
                return
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


async def _refuse_encoded_slash(send: Send) -> None:
    body = json.dumps({"detail": "the path holds an encoded '/' (%2F): no id may hold one",
                       "field": "path"}).encode()
    await send({"type": "http.response.start", "status": 422,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
