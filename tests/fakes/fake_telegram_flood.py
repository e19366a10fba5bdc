"""Flood control of the fake Bot API: when to answer 429 "Too Many Requests: retry after N".

Telegram does not publish exact limits; the Bot FAQ says about 1 message per second per
chat (short bursts allowed), 20 messages per minute per group and 30 per second overall.
Here sendMessage and editMessageText both spend from:

- a per-chat token bucket: `per_chat = (n, window)` refills n tokens per window, holding at
  most `per_chat_burst`;
- a per-group sliding window (chats with a negative id): `per_group = (n, window)`;
- a global sliding window over all chats: `global_ = (n, window)`.

sendMessageDraft spends only from its own per-chat sliding window `drafts = (n, window)`
(our guess: Telegram documents no draft limit). A refused request spends nothing.
`retry_after` is the whole number of seconds (at least 1) until the request would pass.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class FloodLimits:
    """Budgets as (count, window in seconds); scale the windows down in tests."""

    per_chat: tuple[int, float] = (1, 1.0)
    per_chat_burst: int = 3
    per_group: tuple[int, float] = (20, 60.0)
    global_: tuple[int, float] = (30, 1.0)
    drafts: tuple[int, float] = (4, 1.0)
    enabled: bool = True

    @classmethod
    def off(cls) -> FloodLimits:
        """No flood control at all."""
        return cls(enabled=False)


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class FloodControl:
    """Decides and books requests against `FloodLimits`."""

    limits: FloodLimits
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[int, _Bucket] = field(default_factory=dict)
    _groups: dict[int, deque[float]] = field(default_factory=dict)
    _global: deque[float] = field(default_factory=deque)
    _drafts: dict[int, deque[float]] = field(default_factory=dict)

    def message(self, chat_id: int) -> int | None:
        """Books a sendMessage / editMessageText; returns retry_after if it must be refused."""
        if not self.limits.enabled:
            return None
        now = self.clock()
        bucket = self._refill(chat_id, now)
        waits = [self._bucket_wait(bucket)]
        if chat_id < 0:
            waits.append(self._window_wait(self._groups.setdefault(chat_id, deque()), self.limits.per_group, now))
        waits.append(self._window_wait(self._global, self.limits.global_, now))
        wait = max(waits)
        if wait > 0:
            return max(1, math.ceil(wait))
        bucket.tokens -= 1
        if chat_id < 0:
            self._groups[chat_id].append(now)
        self._global.append(now)
        return None

    def draft(self, chat_id: int) -> int | None:
        """Books a sendMessageDraft; returns retry_after if it must be refused."""
        if not self.limits.enabled:
            return None
        now = self.clock()
        window = self._drafts.setdefault(chat_id, deque())
        wait = self._window_wait(window, self.limits.drafts, now)
        if wait > 0:
            return max(1, math.ceil(wait))
        window.append(now)
        return None

    def _refill(self, chat_id: int, now: float) -> _Bucket:
        burst = max(1, self.limits.per_chat_burst)
        bucket = self._buckets.setdefault(chat_id, _Bucket(float(burst), now))
        count, window = self.limits.per_chat
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.stamp) * count / window)
        bucket.stamp = now
        return bucket

    def _bucket_wait(self, bucket: _Bucket) -> float:
        count, window = self.limits.per_chat
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) * window / count

    @staticmethod
    def _window_wait(stamps: deque[float], limit: tuple[int, float], now: float) -> float:
        count, window = limit
        while stamps and stamps[0] <= now - window:
            stamps.popleft()
        if len(stamps) < count:
            return 0.0
        return stamps[len(stamps) - count] + window - now
