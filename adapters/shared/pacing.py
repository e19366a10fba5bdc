"""One write scheduler per platform workspace/bot: budgets, priorities, `Retry-After`.

A write names the budgets it spends (e.g. `("chat.update", team)` and `("postMessage", channel)`)
and its priority. Budgets are sliding windows ("at most `limit` writes in any `per` seconds"),
the same shape platforms document, so a write the pacer lets through is not answered 429 (a small
safety margin absorbs network jitter). When the budgets are short, higher priorities go first:
FINAL (an answer's ending) before FIRST (sign of life, first text) before UPDATE (intermediate
text). A budget a higher priority write is waiting for is reserved for it (lower ones can't take it);
budgets it is not waiting for stay free for others.

Coalescing lives in `LatestWriter`: at most one write per answer is pending; newer text replaces
the pending text, and the final text is never dropped.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FINAL, FIRST, UPDATE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Rate:
    limit: int
    per: float


def parse_rate(setting: str, name: str, value: Any) -> Rate:
    """One budget from a `*_LIMITS` setting: `[limit, seconds]` or `{"limit": n, "per": s}`."""
    if isinstance(value, Mapping):
        limit, per = value.get("limit"), value.get("per")
    elif isinstance(value, (list, tuple)) and len(value) == 2:
        limit, per = value
    else:
        raise ValueError(f"{setting}[{name!r}] must be [limit, seconds] or {{'limit': n, 'per': s}}")
    rate = Rate(int(limit), float(per))  # type: ignore[arg-type]
    if rate.limit < 1 or rate.per <= 0:
        raise ValueError(f"{setting}[{name!r}] needs limit >= 1 and seconds > 0")
    return rate


class Window:
    """Sliding-window budget: at most `limit` grants in any `per` seconds."""

    __slots__ = ("rate", "grants", "blocked_until", "span")

    def __init__(self, rate: Rate, margin: float) -> None:
        self.rate = rate
        self.grants: collections.deque[float] = collections.deque()
        self.blocked_until = 0.0
        self.span = rate.per * (1 + margin) + 0.05

    def wait(self, now: float) -> float:
        """Seconds until one more grant fits (0 = now)."""
        while self.grants and self.grants[0] <= now - self.span:
            self.grants.popleft()
        wait = max(0.0, self.blocked_until - now)
        if len(self.grants) >= self.rate.limit:
            wait = max(wait, self.grants[0] + self.span - now)
        return wait

    def take(self, now: float) -> None:
        self.grants.append(now)

    def idle(self, now: float) -> bool:
        return self.wait(now) == 0 and not self.grants and self.blocked_until <= now


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    keys: tuple[Hashable, ...] = field(compare=False)
    future: asyncio.Future[None] = field(compare=False)


class Pacer:
    """Grants writes against named budgets, highest priority first."""

    def __init__(self, *, margin: float = 0.02, clock: Callable[[], float] = time.monotonic) -> None:
        self._windows: dict[Hashable, Window] = {}
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()
        self._margin = margin
        self._clock = clock
        self._timer: asyncio.TimerHandle | None = None
        self.granted = 0

    def _window(self, key: Hashable, rate: Rate) -> Window:
        win = self._windows.get(key)
        if win is None or win.rate != rate:
            win = self._windows[key] = Window(rate, self._margin)
        return win

    async def acquire(self, budgets: Sequence[tuple[Hashable, Rate]], priority: int = UPDATE) -> None:
        """Wait until every budget has room, then spend one unit of each."""
        keys = tuple(key for key, rate in budgets if self._window(key, rate))
        waiter = _Waiter(priority, next(self._seq), keys, asyncio.get_running_loop().create_future())
        heapq.heappush(self._waiters, waiter)
        self._schedule()
        try:
            await waiter.future
        except asyncio.CancelledError:
            if not waiter.future.done() or waiter.future.cancelled():
                self._waiters = [w for w in self._waiters if w is not waiter]
                heapq.heapify(self._waiters)
                self._schedule()
            raise

    def block(self, keys: Sequence[Hashable], seconds: float) -> None:
        """A platform answered 429 with `Retry-After`: spend nothing on these budgets for a while."""
        until = self._clock() + max(0.0, seconds)
        for key in keys:
            win = self._windows.get(key)
            if win is not None:
                win.blocked_until = max(win.blocked_until, until)
        self._schedule()

    def _schedule(self) -> None:
        now = self._clock()
        reserved: set[Hashable] = set()
        remaining: list[_Waiter] = []
        next_wake: float | None = None
        for waiter in sorted(self._waiters):
            if waiter.future.done():
                continue
            waits = [self._windows[k].wait(now) for k in waiter.keys]
            if not any(k in reserved for k in waiter.keys) and all(w == 0 for w in waits):
                for key in waiter.keys:
                    self._windows[key].take(now)
                self.granted += 1
                waiter.future.set_result(None)
                continue
            # Reserve only the budgets this waiter is waiting for: one chat's empty budget must not
            # hold a shared (bot-wide) budget that has room, or every other chat would queue behind it.
            reserved.update(k for k, w in zip(waiter.keys, waits) if w > 0)
            remaining.append(waiter)
            longest = max(waits, default=0.0)
            if longest > 0:
                next_wake = longest if next_wake is None else min(next_wake, longest)
        self._waiters = remaining
        heapq.heapify(self._waiters)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._waiters and next_wake is not None:
            self._timer = asyncio.get_running_loop().call_later(next_wake, self._schedule)
        if len(self._windows) > 4096:
            self._prune(now)

    def _prune(self, now: float) -> None:
        busy = {k for w in self._waiters for k in w.keys}
        for key in [k for k, w in self._windows.items() if k not in busy and w.idle(now)]:
            del self._windows[key]


class LatestWriter:
    """Coalesces one answer's intermediate writes: one at a time, newest text wins.

    `acquire(priority)` waits for budget (safe to cancel); `send(text)` performs the write (never
    cancelled half-way, so an append is never sent twice or lost silently). `push()` never blocks.
    `close()` stops intermediate writes: a write still waiting for budget is dropped, one being sent
    is let finish. The sink then performs the final write itself at FINAL priority.
    """

    def __init__(
        self,
        acquire: Callable[[int], Awaitable[Any]],
        send: Callable[[str], Awaitable[Any]],
    ) -> None:
        self._acquire = acquire
        self._send = send
        self._latest: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closed = False
        self._sending = False
        self.sent: str | None = None
        self.writes = 0

    def push(self, text: str) -> None:
        if self._closed:
            return
        self._latest = text
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="latest-writer")

    async def _run(self) -> None:
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            if self._latest is None or self._latest == self.sent:
                continue
            await self._acquire(FIRST if self.writes == 0 else UPDATE)
            text = self._latest  # the newest text at the moment budget was granted
            self._sending = True
            try:
                await self._send(text)
                self.sent = text
                self.writes += 1
            except asyncio.CancelledError:
                raise
            except Exception:  # an intermediate write may fail; the final write tries again
                pass
            finally:
                self._sending = False

    async def close(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        if task is None:
            return
        self._wake.set()
        if not self._sending:
            task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                raise
