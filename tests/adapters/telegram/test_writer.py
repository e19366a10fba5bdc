"""The write layer against the fake Bot API over HTTP: formatting fallbacks, "not modified", 429s, pacing."""

from __future__ import annotations

import asyncio

import pytest
import telegram
from telegram.error import RetryAfter

from adapters.shared.pacing import FINAL, UPDATE, Pacer, Rate
from adapters.telegram.render import Part
from adapters.telegram.writer import TelegramWriter, parse_limits
from tests.fakes.fake_telegram import FakeTelegram, FloodLimits

CHAT = 42


def make_bot(fake: FakeTelegram) -> telegram.Bot:
    return telegram.Bot(fake.token, base_url=f"{fake.url}/bot", base_file_url=f"{fake.url}/file/bot")


@pytest.fixture
async def tg():
    async with FakeTelegram(limits=FloodLimits.off()) as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram):
    async with make_bot(tg) as client:
        yield client


async def test_entities_telegram_cannot_take_are_resent_as_plain_text(tg, bot):
    writer = TelegramWriter(bot, {"per_chat": [10, 1]})
    broken = Part("hello", ({"type": "bold", "offset": 3, "length": 10},))  # ends after the text
    sent = await writer.send(CHAT, broken, priority=FINAL)
    assert sent.text == "hello" and tg.chats[CHAT][0].entities == []
    first = tg.calls_to("sendMessage")[0]
    assert first.status == 400 and "entity" in first.response["description"].lower()
    assert await writer.edit(CHAT, sent.message_id, Part("hello"), priority=FINAL), "not modified is success"
    assert "not modified" in tg.calls_to("editMessageText")[-1].response["description"]
    assert not await writer.edit(CHAT, 999, Part("gone"), priority=FINAL), "a missing message is reported"


async def test_a_final_write_waits_out_429s_and_an_update_gives_up():
    async with FakeTelegram(limits=FloodLimits(per_chat=(1, 0.2), per_chat_burst=1)) as tg, make_bot(tg) as bot:
        await _final_and_update(tg, bot)


async def _final_and_update(tg: FakeTelegram, bot: telegram.Bot) -> None:
    writer = TelegramWriter(bot, {"per_chat": [50, 1]})  # the bridge believes in far more than the fake allows
    await writer.send(CHAT, Part("one"), priority=FINAL)
    await writer.send(CHAT, Part("two (final)"), priority=FINAL)  # 429, wait retry_after, try again
    assert writer.ratelimited == 1
    with pytest.raises(RetryAfter):
        await writer.send(CHAT, Part("three (update)"), priority=UPDATE)
    assert tg.final_text(CHAT) == ["one", "two (final)"]
    assert writer.ratelimited == tg.ratelimited == 2
    answered = [c.status for c in tg.calls_to("sendMessage")]
    assert answered == [200, 429, 200, 429]


def test_limits_are_validated():
    rates, options = parse_limits({"per_group": [10, 30], "edit_interval": 0.5, "drafts": {"limit": 1, "per": 2}})
    assert rates["per_group"] == Rate(10, 30.0) and rates["drafts"] == Rate(1, 2.0)
    assert options["edit_interval"] == 0.5
    for bad in ({"per_chat": [0, 1]}, {"nonsense": [1, 1]}, {"global": "fast"}):
        with pytest.raises(ValueError):
            parse_limits(bad)


async def test_one_chats_empty_budget_does_not_hold_up_other_chats():
    """The bot-wide budget is shared: a chat waiting for its own budget must not reserve it."""
    pacer = Pacer(margin=0.0)
    shared, chat = Rate(100, 1.0), Rate(1, 5.0)
    await pacer.acquire([("global", shared), ("chat-1", chat)], UPDATE)
    waiting = asyncio.create_task(pacer.acquire([("global", shared), ("chat-1", chat)], FINAL))
    await asyncio.sleep(0)
    assert not waiting.done()
    await asyncio.wait_for(pacer.acquire([("global", shared), ("chat-2", chat)], UPDATE), 0.5)
    waiting.cancel()
