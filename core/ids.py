"""Job, run and task-run ids: int64 on the wire, kept below 2**53 so JavaScript clients read them exactly.

No central counter: an id is the milliseconds since 2024-01-01 shifted left by 10 bits, plus 10 random
bits. Ids from one process are strictly increasing; ids from two hosts in the same millisecond collide
with probability 1/1024, which every caller covers by inserting with insert-if-absent and retrying.
"""

from __future__ import annotations

import secrets
import threading
import time

_EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
_RANDOM_BITS = 10
MAX_ID = 2**53 - 1

_lock = threading.Lock()
_last = 0


def new_id() -> int:
    """A fresh id, greater than every id this process made before."""
    global _last
    candidate = ((int(time.time() * 1000) - _EPOCH_MS) << _RANDOM_BITS) | secrets.randbits(_RANDOM_BITS)
    with _lock:
        if candidate <= _last:
            candidate = _last + 1 + secrets.randbits(4)
        _last = candidate
    return candidate
