"""tiktoken's byte-pair merge of one pre-token, in O(n log n) instead of O(n**2).

tiktoken (src/lib.rs ``byte_pair_merge``) rescans every pair after each merge, which is quadratic
in the length of a piece: a 1M-byte piece would take hours. The same merge order from a heap:

    ranks {b"ab": 256, b"bc": 257}, piece b"abc": pairs (256, 0..2) and (257, 1..3) on the heap;
    pop 256, merge "a"+"b"; the entry (257, 1..3) is now stale (no part starts at 1) -> [256, 99]

:mod:`minibitnet.tokenizer.pretokenize` uses it for pieces past its budget.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping


def byte_pair_encode(piece: bytes, ranks: Mapping[bytes, int]) -> list[int]:
    """Ids of one pre-token, exactly as tiktoken's BPE gives them, in O(n log n).

    piece: the UTF-8 bytes of one regex piece; ranks: {token bytes: rank}, every byte present.
    Like tiktoken: a piece that is a token is that token; else repeatedly merge the adjacent pair
    whose join has the lowest rank, the leftmost of equal ones. A heap of (rank, start, stop) gives
    that order; an entry is stale unless its pair is still the part at ``start`` and the next one.
    """
    whole = ranks.get(piece)
    if whole is not None:
        return [whole]
    n = len(piece)
    stop_of = list(range(1, n + 1))  # stop_of[start]: where the part starting at start ends
    start_before = list(range(-1, n - 1))  # start of the part before the one at start
    alive = bytearray([1]) * n  # alive[start]: a part starts at start
    heap = [(rank, start, start + 2) for start in range(n - 1)
            if (rank := ranks.get(piece[start:start + 2])) is not None]
    heapq.heapify(heap)
    while heap:
        _, start, stop = heapq.heappop(heap)
        middle = stop_of[start]
        if not alive[start] or middle >= n or stop_of[middle] != stop:
            continue  # stale: one of the two parts has merged since
        alive[middle] = 0
        stop_of[start] = stop
        if stop < n:
            start_before[stop] = start
            after = stop_of[stop]
            if (rank := ranks.get(piece[start:after])) is not None:
                heapq.heappush(heap, (rank, start, after))
        before = start_before[start]
        if before >= 0 and (rank := ranks.get(piece[before:stop])) is not None:
            heapq.heappush(heap, (rank, before, stop))
    ids: list[int] = []
    start = 0
    while start < n:
        ids.append(ranks[piece[start:stop_of[start]]])
        start = stop_of[start]
    return ids
