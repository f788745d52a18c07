"""The OpenAPI document, saying what every endpoint can answer.

FastAPI documents each route's own responses and its schema's 422. Here every error
answer gets its body's schema (`ErrorOut`; a 422 is that or `RequestErrorOut`), every
route with a body its 413 (the body limit applies to all), and every route under a run
its 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from autopack.api.schemas import ErrorOut, ProblemOut, RequestErrorOut

_REF = "#/components/schemas/{model}"


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document (built once)."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(title=app.title, version=app.version, summary=app.summary,
                           routes=app.routes)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorOut, ProblemOut, RequestErrorOut):
        schemas[model.__name__] = model.model_json_schema(ref_template=_REF)
    error = {"$ref": _REF.format(model="ErrorOut")}
    invalid = {"oneOf": [{"$ref": _REF.format(model="RequestErrorOut")}, error]}
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            answers = operation.setdefault("responses", {})
            answers.setdefault("422", {"description": "invalid input (field named)"})
            if method in ("post", "put", "patch"):
                answers.setdefault("413", {"description": "body too large"})
            if "{run_id}" in path:
                answers.setdefault("404", {"description": "unknown run"})
            for code, answer in answers.items():
                if code[0] in "45":
                    answer["content"] = {"application/json": {
                        "schema": invalid if code == "422" else error}}
    app.openapi_schema = document
    return document
