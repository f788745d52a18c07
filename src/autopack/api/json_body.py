"""JSON request bodies: UTF-8 text (RFC 8259) parsed with a clear error for what is not.

FastAPI answers a body that is not JSON with a 422 naming the position, but a body that
is not UTF-8, nests too deeply for the parser, or holds an integer of more digits than
the interpreter converts, with a 400 that says only "There was an error parsing the
body". Here these become JSON errors, so they get the same 422, as does an object
naming a member twice (readers disagree on which one counts).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from autopack.plan.jsonfile import DuplicateKey, unique_keys


class JsonTextRequest(Request):
    """A request whose `json()` raises JSONDecodeError for every body that is not JSON."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise json.JSONDecodeError(
                    f"the body is not UTF-8 (byte {exc.start})", "", exc.start) from None
            try:
                self._json = json.loads(text, object_pairs_hook=unique_keys)
            except json.JSONDecodeError:
                raise
            except RecursionError:
                raise json.JSONDecodeError("the body is nested too deeply", "", 0) from None
            except DuplicateKey as exc:
                raise json.JSONDecodeError(str(exc), "", 0) from None
            except ValueError as exc:  # a number past the interpreter's digit limit
                raise json.JSONDecodeError(f"the body holds an unreadable value: {exc}",
                                           "", 0) from None
        return self._json


class JsonTextRoute(APIRoute):
    """The route class of every router: its requests are `JsonTextRequest`s."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            return await handler(JsonTextRequest(request.scope, request.receive))

        return handle
