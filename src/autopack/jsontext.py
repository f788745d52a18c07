"""The one text form of every JSON document Autopack writes to a file.

Sorted keys, two-space indent, UTF-8 as is, a trailing newline: the same text as
`json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\\n"`, made by orjson
because the standard library's indented encoder is pure Python and dominated the cost
of creating a run (its strategy and one issue file per phase).
"""

from __future__ import annotations

from typing import Any

import orjson

_OPTIONS = (orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
            | orjson.OPT_APPEND_NEWLINE)


def document_bytes(document: Any) -> bytes:
    """`document` as the UTF-8 bytes of its file."""
    return orjson.dumps(document, option=_OPTIONS)


def document_text(document: Any) -> str:
    """`document` as the text of its file."""
    return document_bytes(document).decode()
