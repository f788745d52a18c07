"""Free text taken from users: any length-limited text, but never a NUL character.

A NUL ends a string in C and PostgreSQL's text cannot hold one (the insert failed with a
500 there while SQLite kept it): it is refused where the text comes in, on every
database alike.
"""

from __future__ import annotations

from pydantic import AfterValidator


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError(f"text may not contain a NUL character (at {value.index(chr(0))})")
    return value


NoNul = AfterValidator(_no_nul)
"""Add to `Annotated[str, ...]` for any free-text field."""
