"""What each answer looked like at the platform: read incrementally from the fakes' call records.

One `Answer` per conversation (its own Slack channel or Telegram chat). The watchers go through the
fakes' `calls` lists in arrival order (woken by the fakes' own conditions, O(1) per call) and note
for every answer: the first write (sign of life), the first write carrying answer text, the write
after which the platform shows the complete final text, the number of writes and of 429s.

Completion is checked once per batch of new calls and credited to the *last* write of that answer in
the batch, so a late check can only make the bridge look slower, never faster.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any

from tests.fakes.fake_slack import FakeSlack
from tests.fakes.fake_telegram import FakeTelegram

SLACK_READS = frozenset({"auth.test", "users.info", "files.info", "conversations.info", "conversations.replies",
                         "conversations.history", "bots.info", "team.info", "apps.connections.open"})
TELEGRAM_READS = frozenset({"getMe", "getUpdates", "setWebhook", "deleteWebhook", "getWebhookInfo", "getFile",
                            "getChat", "setMyCommands", "getMyCommands", "deleteMyCommands", "logOut", "close"})
TEXT_WRITES = {"slack": ("markdown_text", "text", "blocks"), "telegram": ("text",)}


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@dataclass
class Answer:
    """One conversation's answer, with every time in time.monotonic() of the bench process."""

    platform: str  # "slack" | "telegram"
    key: str  # Slack channel id, or Telegram chat id as str
    tag: str  # unique word in the question, to find the Dify request
    thread_ts: str = ""  # Slack: the mention's ts (the answer's thread)
    sent: float | None = None  # event request headers on the wire
    acked: float | None = None  # the bridge's HTTP answer to the event
    ack_status: int = 0
    first_life: float | None = None
    first_text: float | None = None
    complete: float | None = None
    writes: int = 0
    ratelimited: int = 0
    dify_request: float | None = None
    dify_first_delta: float | None = None
    dify_end: float | None = None
    methods: dict[str, int] | None = None

    def note_method(self, method: str) -> None:
        if self.methods is None:
            self.methods = {}
        self.methods[method] = self.methods.get(method, 0) + 1


def _carries(args: dict[str, Any], fields: tuple[str, ...], marker: str) -> bool:
    for name in fields:
        value = args.get(name)
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        if marker in text:
            return True
    return False


class Watcher:
    """Follows one fake's call list; subclasses say whose answer a call is and when it is complete."""

    platform = ""
    reads: frozenset[str] = frozenset()

    def __init__(self, fake: Any, marker: str, answer_text: str) -> None:
        self.fake = fake
        self.marker = marker
        self.expected = norm(answer_text)
        self.answers: dict[str, Answer] = {}
        self.pending = 0  # answers registered and not complete
        self.seen = 0
        self.done = asyncio.Event()

    def add(self, answer: Answer) -> None:
        self.answers[answer.key] = answer
        self.pending += 1
        self.done.clear()

    def key_of(self, call: Any) -> str | None:
        raise NotImplementedError

    def args_of(self, call: Any) -> dict[str, Any]:
        raise NotImplementedError

    def is_complete(self, answer: Answer) -> bool:
        raise NotImplementedError

    def process(self) -> None:
        """Account every call recorded since the last time."""
        calls = self.fake.calls
        touched: dict[str, float] = {}
        for call in calls[self.seen:]:
            if call.method in self.reads:
                continue
            key = self.key_of(call)
            answer = self.answers.get(key) if key is not None else None
            if answer is None or answer.sent is None or call.time < answer.sent:
                continue
            answer.writes += 1
            if call.status != 429:
                answer.note_method(call.method)
            if call.status == 429:
                answer.ratelimited += 1
                answer.note_method(f"429 {call.method}")
                continue
            if not call.ok:
                continue
            if answer.first_life is None:
                answer.first_life = call.time
            if answer.first_text is None and _carries(self.args_of(call), TEXT_WRITES[self.platform], self.marker):
                answer.first_text = call.time
            if answer.complete is None:
                touched[key] = call.time
        self.seen = len(calls)
        for key, at in touched.items():
            answer = self.answers[key]
            if self.is_complete(answer):
                answer.complete = at
                self.pending -= 1
        if self.pending <= 0:
            self.done.set()

    async def run(self) -> None:
        """Process calls as they arrive, until cancelled."""
        while True:
            await self.fake.wait_for(lambda f: len(f.calls) > self.seen, timeout=3600)
            self.process()


class SlackWatcher(Watcher):
    platform = "slack"
    reads = SLACK_READS

    def __init__(self, fake: FakeSlack, marker: str, answer_text: str) -> None:
        super().__init__(fake, marker, answer_text)

    def key_of(self, call: Any) -> str | None:
        channel = call.args.get("channel") or call.args.get("channel_id")
        return str(channel) if channel else None

    def args_of(self, call: Any) -> dict[str, Any]:
        return call.args

    def visible(self, answer: Answer) -> tuple[str, bool]:
        msgs = self.fake.thread(answer.key, answer.thread_ts)
        return "\n".join(m.visible() for m in msgs), any(m.streaming for m in msgs)

    def is_complete(self, answer: Answer) -> bool:
        text, streaming = self.visible(answer)
        return not streaming and self.expected in norm(text)


class TelegramWatcher(Watcher):
    platform = "telegram"
    reads = TELEGRAM_READS

    def __init__(self, fake: FakeTelegram, marker: str, answer_text: str) -> None:
        super().__init__(fake, marker, answer_text)

    def key_of(self, call: Any) -> str | None:
        chat = call.params.get("chat_id")
        return str(chat) if chat is not None else None

    def args_of(self, call: Any) -> dict[str, Any]:
        return call.params

    def visible(self, answer: Answer) -> tuple[str, bool]:
        return "\n".join(self.fake.final_text(int(answer.key))), False

    def is_complete(self, answer: Answer) -> bool:
        return self.expected in norm(self.visible(answer)[0])
