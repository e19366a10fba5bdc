"""100 chats at once under Telegram's flood control: every ending arrives complete.

Half the chats are private (drafts, then a final message), half are groups (a message, then edits).
The fake's flood limits are the tenfold-scaled ones of conftest.py. "matched": the bridge's budgets
are the same (429s should be rare: only network jitter). "optimistic": the bridge believes in three
times more than Telegram allows, so 429s do happen and must be honoured. The numbers are printed
(run with `-s`) and kept as user properties in the JUnit report.
"""

from __future__ import annotations

import time

import pytest

from tests.fakes.fake_dify import FakeDify, Plan
from tests.helpers import telegram_updates as tu

CHATS = 100
QUESTION = "please explain " + " ".join(f"topic{i}" for i in range(25))
OPTIMISTIC = {"global": [90, 0.1], "per_chat": [9, 0.3], "per_group": [60, 6.0], "group_updates": [45, 6.0],
              "drafts": [12, 0.1]}


def expected(question: str) -> str:
    """The fake model's answer (the recordings' deterministic reply), as Telegram shows it."""
    return f"Hello from the fake LLM. You said: {question} . This reply is deterministic."


@pytest.mark.parametrize("budgets", ["matched", "optimistic"])
async def test_every_ending_arrives_across_100_concurrent_chats(start_bridge, budgets, record_property):
    dify = await FakeDify(default_plan=Plan(token_gap=0.01)).start()
    tb = await start_bridge(dify=dify, limits=OPTIMISTIC if budgets == "optimistic" else None)
    chats: dict[int, str] = {}
    for i in range(CHATS):
        question = f"{QUESTION} chat{i}"
        if i % 2:
            chat_id = -100_500 - i
            text, entities = tu.mention("", "dify_test_bot", question)
            tb.tg.push_update(tu.group_message(text, entities=entities, chat_id=chat_id, user_id=10_000 + i))
        else:
            chat_id = 10_000 + i
            tb.tg.push_update(tu.private_message(question, user_id=chat_id))
        chats[chat_id] = expected(question)
    began = time.monotonic()

    def done(f) -> bool:
        return all(f.final_text(chat) == [answer] for chat, answer in chats.items())

    await tb.tg.wait_for(done, timeout=60)
    elapsed = time.monotonic() - began
    writes = [c for c in tb.tg.calls if c.method in ("sendMessage", "editMessageText", "sendMessageDraft")]
    stats = {
        "answers": CHATS, "seconds": round(elapsed, 2), "answers_per_s": round(CHATS / elapsed, 1),
        "writes_per_answer": round(len(writes) / CHATS, 2),
        "group_writes_per_answer": round(sum(c.params.get("chat_id", 0) < 0 for c in writes) / (CHATS / 2), 2),
        "private_writes_per_answer": round(sum(c.params.get("chat_id", 0) > 0 for c in writes) / (CHATS / 2), 2),
        "429s": tb.tg.ratelimited, "lost_endings": sum(f != [a] for f, a in
                                                      ((tb.tg.final_text(c), a) for c, a in chats.items())),
    }
    for key, value in stats.items():
        record_property(key, value)
    print(f"\nflood [{budgets}]: {stats}")
    assert stats["lost_endings"] == 0
    assert all(len(tb.tg.chats[c]) == 1 for c in chats), "one message per answer, no duplicates"
    failed = [c for c in tb.tg.calls if not c.ok and c.status != 429]
    assert failed == [], "only flood control refused anything"
    if budgets == "optimistic":
        assert tb.tg.ratelimited > 0, "the optimistic budgets do meet flood control"
        assert tb.adapter.writer.ratelimited == tb.tg.ratelimited, "every 429 was seen and honoured"
