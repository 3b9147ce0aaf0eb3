"""Page sizes of `{"data": [...], "next_cursor": str|null}` lists (cursors: storage.cursors)."""

from __future__ import annotations

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
