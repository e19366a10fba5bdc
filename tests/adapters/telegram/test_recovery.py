"""A crash mid-answer: the next start finishes what was left streaming as "interrupted".

The crash is real: `dify-bridge serve` runs as a subprocess against the fakes and gets SIGKILL
while two answers stream (one edited in a group, one drafted in a private chat).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bots import messages
from storage import Repository
from tests.fakes.fake_dify import Plan
from tests.helpers import telegram_updates as tu

from .conftest import GROUP, PRIVATE, free_port

ROOT = Path(__file__).resolve().parents[3]
WORDS = [f"w{i} " for i in range(1, 31)]
FOOTER = "stopped: " + messages.INTERRUPTED


async def test_a_crash_mid_answer_is_finished_as_interrupted_at_the_next_start(start_bridge, tmp_path):
    tb = await start_bridge(launch=False)
    tb.dify.plan(Plan(tokens=WORDS, token_gap=0.04, hang_after=20), Plan(tokens=WORDS, token_gap=0.04, hang_after=20))
    env = {**os.environ, **tb.env, "HOST": "127.0.0.1", "PORT": str(free_port()), "PYTHONPATH": str(ROOT)}
    with open(tmp_path / "serve.log", "wb") as log:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bots.cli", "serve", env=env,
                                                    cwd=tmp_path, stdout=log, stderr=log)
    try:
        await tb.tg.wait_for(lambda f: f.polls_waiting > 0, timeout=30)
        text, entities = tu.mention("", "dify_test_bot", "tell me a long story")
        tb.tg.push_update(tu.group_message(text, entities=entities))
        tb.tg.push_update(tu.private_message("and me too"))
        await tb.tg.wait_for(lambda f: "w15" in "".join(f.final_text(GROUP))
                             and any("w15" in d["text"] for d in f.drafts.get(PRIVATE, [])))
    finally:
        proc.kill()
        await proc.wait()
    [partial] = tb.sent(GROUP)
    assert tb.sent(PRIVATE) == [], "only a draft was showing in the private chat"

    await tb.start()  # the same database file: the next start
    await tb.tg.wait_for(lambda f: f.final_text(GROUP)[0].endswith(FOOTER) and f.final_text(PRIVATE))
    [finished] = tb.sent(GROUP)
    assert finished.startswith("w1 w2 w3") and partial.startswith(finished[: -len(FOOTER)].strip())
    assert tb.tg.chats[GROUP][0].entities[-1]["type"] == "italic", "the footer is in italics"
    assert tb.sent(PRIVATE) == [FOOTER], "a short note where the draft was"
    repo = await Repository.open(tb.db_url)
    try:
        assert [r.state for r in await repo.replies_in_state("interrupted", "telegram")] == ["interrupted"] * 2
        assert await repo.replies_in_state("streaming", "telegram") == []
    finally:
        await repo.close()


async def test_a_shutdown_mid_answer_ends_it_visibly(start_bridge):
    tb = await start_bridge(env={"SHUTDOWN_GRACE_SECONDS": "0"})
    tb.dify.plan(Plan(tokens=WORDS, token_gap=0.02, hang_after=10))
    text, entities = tu.mention("", "dify_test_bot", "a story that never ends")
    tb.tg.push_update(tu.group_message(text, entities=entities))
    await tb.tg.wait_for(lambda f: "w5" in "".join(f.final_text(GROUP)))
    await tb.stop()
    [ended] = tb.sent(GROUP)
    assert ended.startswith("w1 w2 w3") and ended.endswith("stopped: " + messages.SHUTTING_DOWN)
