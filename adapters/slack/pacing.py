"""Every Slack write goes through here: one `Pacer` per workspace, per-method budgets, 429 handling.

Budgets (Slack's documented tiers, per app and workspace unless noted):

| method | default | source |
|---|---|---|
| chat.postMessage | 1 per 1 s **per channel** | "1 message per second per channel" (rate-limit docs) |
| chat.update | 50 per 60 s | Tier 3 |
| chat.appendStream | 100 per 60 s | Tier 4 |
| chat.stopStream | 20 per 60 s | Tier 2 (chat.stopStream docs) |
| chat.startStream | 20 per 60 s | **UNVERIFIED**: tier not published; assumed Tier 2 like stopStream |
| assistant.threads.setStatus | 50 per 60 s | **UNVERIFIED**: assumed Tier 3 |
| chat.postEphemeral | 100 per 60 s | Tier 4 |

`SLACK_LIMITS` (JSON) overrides any of them, e.g. `{"chat.update": [50, 60], "answer_interval": 1.0}` or
`{"chat.postMessage": {"limit": 5, "per": 5}}`. `answer_interval` is the minimum gap between two
intermediate writes of one answer (not a Slack budget: it keeps one fast answer from spending a whole
workspace budget); `margin` (default 0.02) widens every window by that fraction to absorb network jitter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bots.metrics import Metrics
from adapters.shared.pacing import parse_rate, FINAL, Pacer, Rate

log = logging.getLogger("adapters.slack.pacing")

PER_CHANNEL = frozenset({"chat.postMessage"})

DEFAULT_RATES: dict[str, Rate] = {
    "chat.postMessage": Rate(1, 1.0),
    "chat.update": Rate(50, 60.0),
    "chat.appendStream": Rate(100, 60.0),
    "chat.stopStream": Rate(20, 60.0),
    "chat.startStream": Rate(20, 60.0),
    "assistant.threads.setStatus": Rate(50, 60.0),
    "chat.postEphemeral": Rate(100, 60.0),
}
DEFAULT_ANSWER_INTERVAL = 1.0
DEFAULT_MARGIN = 0.02  # budgets are spent this much slower than allowed, for network jitter
FINAL_ATTEMPTS = 50  # a final write retried this often on 429 is a bug somewhere, not Slack being busy


@dataclass(frozen=True)
class Limits:
    rates: dict[str, Rate]
    answer_interval: float = DEFAULT_ANSWER_INTERVAL
    margin: float = DEFAULT_MARGIN


def parse_limits(overrides: Mapping[str, Any]) -> Limits:
    """Default budgets with `SLACK_LIMITS` applied; raises ValueError naming a bad entry."""
    rates = dict(DEFAULT_RATES)
    knobs = {"answer_interval": DEFAULT_ANSWER_INTERVAL, "margin": DEFAULT_MARGIN}
    for name, value in overrides.items():
        if name in knobs:
            knobs[name] = float(value)
            continue
        rates[name] = parse_rate("SLACK_LIMITS", name, value)
    return Limits(rates, knobs["answer_interval"], knobs["margin"])


def slack_error(exc: BaseException) -> str:
    """Slack's error code of a failed call ('' when it is not a Slack API error)."""
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return str(exc.response.get("error") or "")
    return ""


class SlackWriter:
    """Paces and performs Web API writes for every workspace the bot token reaches."""

    def __init__(
        self, client: AsyncWebClient, limits: Mapping[str, Any] | None = None, metrics: Metrics | None = None
    ) -> None:
        self.client = client
        self.metrics = metrics
        parsed = parse_limits(limits or {})
        self.rates, self.answer_interval, self.margin = parsed.rates, parsed.answer_interval, parsed.margin
        self._pacers: dict[str, Pacer] = {}
        self.calls = 0
        self.ratelimited = 0

    def pacer(self, team: str) -> Pacer:
        pacer = self._pacers.get(team)
        if pacer is None:
            pacer = self._pacers[team] = Pacer(margin=self.margin)
        return pacer

    def budgets(self, method: str, args: Mapping[str, Any]) -> list[tuple[Hashable, Rate]]:
        rate = self.rates.get(method)
        if rate is None:
            return []
        if method in PER_CHANNEL:
            return [((method, args.get("channel") or args.get("channel_id")), rate)]
        return [((method,), rate)]

    async def acquire(self, team: str, method: str, args: Mapping[str, Any], priority: int) -> None:
        budgets = self.budgets(method, args)
        if budgets:
            await self.pacer(team).acquire(budgets, priority)

    async def call(
        self, team: str, method: str, args: dict[str, Any], priority: int, *, paid: bool = False
    ) -> AsyncSlackResponse:
        """One write. `paid`: the budget was already acquired. A FINAL write is retried on 429 (after
        `Retry-After`) until it succeeds or fails otherwise; other writes raise the 429."""
        attempts = 0
        while True:
            if not paid:
                await self.acquire(team, method, args, priority)
            paid = False
            attempts += 1
            self.calls += 1
            if self.metrics is not None:
                self.metrics.platform_writes.labels("slack", method).inc()
            try:
                return await self.client.api_call(method, json=args)
            except SlackApiError as exc:
                if exc.response is None or exc.response.status_code != 429:
                    raise
                self.ratelimited += 1
                if self.metrics is not None:
                    self.metrics.platform_ratelimited.labels("slack").inc()
                retry_after = _retry_after(exc)
                keys = [key for key, _ in self.budgets(method, args)]
                self.pacer(team).block(keys, retry_after)
                log.warning("Slack rate-limited %s; retrying after %.1f s", method, retry_after)
                if priority != FINAL or attempts >= FINAL_ATTEMPTS:
                    raise
                if not keys:  # an unbudgeted method: nothing in the pacer to block
                    await asyncio.sleep(retry_after)


def _retry_after(exc: SlackApiError) -> float:
    try:
        return max(0.0, float(exc.response.headers.get("Retry-After", "1")))
    except (TypeError, ValueError):
        return 1.0
