"""JSON documents read from files and validated by a Pydantic model, with errors that
name the file and the place: `file:line:col` for malformed JSON, `file: $.a.b[2]` for a
value the model refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from autopack.domain.errors import InvalidInput

Model = TypeVar("Model", bound=BaseModel)


def json_path(location: tuple[int | str, ...]) -> str:
    """`$.a.b[2].c` for a pydantic error location."""
    out = "$"
    for part in location:
        if part != "[key]":  # pydantic's marker for "the key itself is wrong"
            out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def validate(model: type[Model], data: object, source: str, error: type[InvalidInput]) -> Model:
    """`model` from `data`; the first problem raised as `error` naming source and JSON path."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise error(f"{source}: {json_path(tuple(first['loc']))}",
                    f"{first['msg']}{more}") from None


def load(model: type[Model], path: Path, what: str, error: type[InvalidInput]) -> Model:
    """Read `path` as JSON and validate it as `model` (`what` names the file's kind)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise error(str(path), f"no such {what} file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(str(path), f"cannot read the {what}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{path}:{exc.lineno}:{exc.colno}", f"malformed JSON: {exc.msg}") from None
    except RecursionError:
        raise error(str(path), f"the {what} is nested too deeply to read") from None
    return validate(model, data, str(path), error)
