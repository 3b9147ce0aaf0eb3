"""The set of segment ids a record is in, looked up by a small integer key.

The generated program does not build a tuple of every segment's answer (hashing 17 booleans costs
more than the answers themselves). Each segment that holds adds its bit to an int, `k0 += 1 << i`
for the i-th segment; only holding segments cost anything. Bits go in chunks of CHUNK_BITS per
int, so every int stays one CPython digit (its additions take the fast path) however many
segments a workspace has; the key is that int, or the tuple of them past CHUNK_BITS segments.

Few combinations of answers occur among real users, so each combination's frozenset is made once
and found by the key after that.
"""

from __future__ import annotations

from collections.abc import Sequence

CHUNK_BITS = 30  # one digit of a CPython int on 64-bit builds
_CACHE_SIZE = 4096  # combinations kept; past that each further one is made every time


def bit_of(index: int) -> tuple[int, int]:
    """(which int of the key, the bit's value in it) for the segment at `index`."""
    chunk, bit = divmod(index, CHUNK_BITS)
    return chunk, 1 << bit


def chunks_for(count: int) -> int:
    return max(1, -(-count // CHUNK_BITS))


class ResultSets:
    """key -> the ids whose bits are set in it (`ids` in bit order). The program looks the key up
    in `known`, a plain dict (CPython specializes its lookup; a dict subclass with __missing__
    costs twice as much), and calls `make` on a KeyError, the first time a combination occurs."""

    def __init__(self, ids: Sequence[str]):
        self.ids = tuple(ids)
        self.known: dict[object, frozenset[str]] = {}

    def make(self, key: object) -> frozenset[str]:
        chunks = key if isinstance(key, tuple) else (key,)
        ids = self.ids
        found = frozenset(
            ids[start + bit]
            for start, bits in zip(range(0, len(ids), CHUNK_BITS), chunks, strict=False)
            for bit in range(min(CHUNK_BITS, len(ids) - start))
            if bits >> bit & 1
        )
        if len(self.known) < _CACHE_SIZE:
            self.known[key] = found
        return found
