"""Drive the bridge like the platforms do: signed Slack events and Telegram webhook updates over HTTP.

"Event sent" is the moment the request's headers went on the wire (aiohttp trace hook), so time
spent queueing in the bench's own connection pool is not charged to the bridge.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from types import SimpleNamespace
from typing import Any

import aiohttp

from bench.harness import SLACK_SIGNING_SECRET, TELEGRAM_SECRET
from bench.watch import Answer
from tests.helpers.slack_events import app_mention, event_envelope, new_ts, sign
from tests.helpers.telegram_updates import private_message

_channels = itertools.count(1)
_chats = itertools.count(1)


async def _on_headers_sent(session: aiohttp.ClientSession, ctx: SimpleNamespace, params: Any) -> None:
    answer = ctx.trace_request_ctx
    if isinstance(answer, Answer) and answer.sent is None:
        answer.sent = time.monotonic()


class Driver:
    """One HTTP client (keep-alive pool) that delivers events to the bridge."""

    def __init__(self, bridge_url: str, *, pool: int = 100) -> None:
        self.bridge_url = bridge_url
        trace = aiohttp.TraceConfig()
        trace.on_request_headers_sent.append(_on_headers_sent)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=pool), trace_configs=[trace],
            timeout=aiohttp.ClientTimeout(total=30))

    async def close(self) -> None:
        await self.session.close()

    async def _post(self, answer: Answer, path: str, body: bytes, headers: dict[str, str], *,
                    retry_unready: bool = False) -> None:
        """POST one event. `retry_unready`: a 503 (adapter still starting) is retried a few times; only
        for warm-ups, since `answer.sent` stays the first attempt's."""
        for attempt in range(40 if retry_unready else 1):
            try:
                async with self.session.post(f"{self.bridge_url}{path}", data=body, headers=headers,
                                             trace_request_ctx=answer) as resp:
                    await resp.read()
                    answer.ack_status = resp.status
            except (aiohttp.ClientError, TimeoutError):
                answer.ack_status = -1
            answer.acked = time.monotonic()
            if answer.ack_status != 503:
                return
            await asyncio.sleep(0.05)  # the bridge is still starting its adapters (bounded retries)

    # ---- Slack ---------------------------------------------------------------------------

    @staticmethod
    def slack_answer(tag: str) -> tuple[Answer, bytes]:
        """A mention in a channel of its own, as an `event_callback` body."""
        channel = f"C{next(_channels):08d}"
        ts = new_ts()
        event = app_mention(f"{tag} what do you think?", user=f"U{channel[1:]}", channel=channel, ts=ts)
        body = json.dumps(event_envelope(event)).encode()
        return Answer(platform="slack", key=channel, tag=tag, thread_ts=ts), body

    async def send_slack(self, answer: Answer, body: bytes, *, retry_unready: bool = False) -> None:
        headers = {"Content-Type": "application/json", **sign(body, SLACK_SIGNING_SECRET)}
        await self._post(answer, "/slack/events", body, headers, retry_unready=retry_unready)

    # ---- Telegram ------------------------------------------------------------------------

    @staticmethod
    def telegram_answer(tag: str) -> tuple[Answer, bytes]:
        """A private-chat message from a user of its own, as a webhook update body."""
        user_id = 50_000_000 + next(_chats)
        update = private_message(f"{tag} what do you think?", user_id=user_id, first_name="Bench")
        return Answer(platform="telegram", key=str(user_id), tag=tag), json.dumps(update).encode()

    async def send_telegram(self, answer: Answer, body: bytes, *, retry_unready: bool = False) -> None:
        headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
        await self._post(answer, "/telegram/webhook", body, headers, retry_unready=retry_unready)

    async def send(self, answer: Answer, body: bytes, *, retry_unready: bool = False) -> None:
        if answer.platform == "slack":
            await self.send_slack(answer, body, retry_unready=retry_unready)
        else:
            await self.send_telegram(answer, body, retry_unready=retry_unready)

    def make(self, platform: str, tag: str) -> tuple[Answer, bytes]:
        return self.slack_answer(tag) if platform == "slack" else self.telegram_answer(tag)
