"""Answers for finished worlds, kept in the API process so a popular seed costs no Redis call.

Keyed by the request's body, byte for byte: the same bytes always parse to the same request.

Only succeeded jobs are kept: such a record never changes again, so the one risk is serving it
after Redis has expired it. An entry therefore lives `ttl_s` at most, and never past the
record's own expiry (finished_at + VWE_RESULT_TTL_S). Redis stays the source of truth: a miss,
or a seed that is still queued or running, goes to the store as before.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

# Enough for every seed a busy day keeps asking for; a few MB of encoded answers.
MAX_ENTRIES = 4096
# A valid body is short; a long one (padded with whitespace) is answered but not remembered.
MAX_KEY_BYTES = 512


class AnswerCache:
    def __init__(self, ttl_s: float, max_entries: int = MAX_ENTRIES,
                 clock: Callable[[], float] = time.time) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[bytes, tuple[float, bytes]] = OrderedDict()

    def get(self, key: bytes) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, body = entry
        if self.clock() >= expires_at:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return body

    def put(self, key: bytes, body: bytes, record_expires_at: float) -> None:
        if self.ttl_s <= 0 or len(key) > MAX_KEY_BYTES:
            return
        expires_at = min(self.clock() + self.ttl_s, record_expires_at)
        if expires_at <= self.clock():
            return
        self._entries[key] = (expires_at, body)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
