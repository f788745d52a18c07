"""Serialized run bodies keyed by the run's version, so an unchanged run is not re-read.

The version is read from the database on every request and is bumped in the same
transaction as every change, so a cached body is served only while it is current.
"""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock


class RunBodyCache:
    """A bounded LRU of (run_id -> (version, JSON bytes))."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._items: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
        self._lock = Lock()

    def get(self, run_id: str, version: int) -> bytes | None:
        """The body of `run_id` at exactly `version`, if cached."""
        with self._lock:
            item = self._items.get(run_id)
            if item is None or item[0] != version:
                return None
            self._items.move_to_end(run_id)
            return item[1]

    def put(self, run_id: str, version: int, body: bytes) -> None:
        """Remember the body of `run_id` at `version` (a newer version wins)."""
        with self._lock:
            item = self._items.get(run_id)
            if item is not None and item[0] > version:
                return
            self._items[run_id] = (version, body)
            self._items.move_to_end(run_id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
