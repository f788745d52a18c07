"""JSON documents read from files and validated by a Pydantic model, with errors that
name the file and the place: `file:line:col` for malformed JSON, `file: $.a.b[2]` for a
value the model refuses."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from autopack.domain.errors import InvalidInput
from autopack.domain.problems import Location, dotted, problems

Model = TypeVar("Model", bound=BaseModel)


class DuplicateKey(ValueError):
    """A JSON object names one member twice."""


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's members (`object_pairs_hook`), refusing a name given twice: which
    of the two counts is up to each reader (the last, here; the first, elsewhere)."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise DuplicateKey(f"the key {key!r} is given twice in one object")
        found[key] = value
    return found


def json_path(location: Location) -> str:
    """`$.a.b[2].c` for a pydantic error location."""
    place = dotted(location)
    return "$" + (place if not place or place.startswith("[") else f".{place}")


def validate(model: type[Model], data: object, source: str, error: type[InvalidInput],
             strict: bool = False) -> Model:
    """`model` from `data`; the first problem raised as `error` naming source and JSON path.

    `strict`: `data` is a JSON document, taken as JSON means it: a number is a JSON
    number and a flag a JSON boolean (`"100"`, `"yes"` are refused, not converted).
    """
    try:
        if strict:
            return model.model_validate_json(json.dumps(data), strict=True)
        return model.model_validate(data)
    except ValidationError as exc:
        found = problems(exc)
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise error(f"{source}: {json_path(found[0][0])}", f"{found[0][1]}{more}") from None


def read_text(path: Path, what: str, error: type[InvalidInput]) -> str:
    """The UTF-8 text of `path`, a byte-order mark dropped; `error` naming the file when
    it is missing, unreadable, or not a regular file (a FIFO would block its reader
    forever: it is opened without blocking and refused)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise error(str(path), f"no such {what} file") from None
    except OSError as exc:
        raise error(str(path), f"cannot read the {what}: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise error(str(path), f"the {what} is not a regular file")
        os.set_blocking(fd, True)
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read()
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(str(path), f"cannot read the {what}: {exc}") from None


def load(model: type[Model], path: Path, what: str, error: type[InvalidInput],
         strict: bool = False) -> Model:
    """Read `path` as JSON and validate it as `model` (`what` names the file's kind;
    `strict` as for `validate`)."""
    text = read_text(path, what, error)
    try:
        data = json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as exc:
        raise error(f"{path}:{exc.lineno}:{exc.colno}", f"malformed JSON: {exc.msg}") from None
    except RecursionError:
        raise error(str(path), f"the {what} is nested too deeply to read") from None
    except DuplicateKey as exc:
        raise error(str(path), str(exc)) from None
    except ValueError as exc:  # an integer past the interpreter's digit limit
        raise error(str(path), f"the {what} holds an unreadable value: {exc}") from None
    return validate(model, data, str(path), error, strict)
