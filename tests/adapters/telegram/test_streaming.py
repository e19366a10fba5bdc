"""How answers look: long answers split, broken Markdown, refused drafts, edit mode, typing, Dify errors."""

from __future__ import annotations

import re

import pytest

from adapters.telegram.render import convert, utf16_len
from tests.fakes.fake_dify import Plan
from tests.helpers import telegram_updates as tu

from .conftest import GROUP, PRIVATE

BOT = "dify_test_bot"


def errors(fake) -> list[str]:
    return [f"{c.method}:{c.status}:{c.response.get('description')}" for c in fake.calls if not c.ok]


def ask_group(question: str, **kw) -> dict:
    text, entities = tu.mention("", BOT, question)
    return tu.group_message(text, entities=entities, **kw)


def entity_text(text: str, entity: dict) -> str:
    data = text.encode("utf-16-le")
    return data[2 * entity["offset"]:2 * (entity["offset"] + entity["length"])].decode("utf-16-le")


def long_answer() -> tuple[str, list[str]]:
    """About 10,000 characters: prose paragraphs with emoji, bold, lists, and five code blocks."""
    blocks, codes = [], []
    for i in range(22):
        if i % 4 == 1:
            code = "\n".join(f"def step_{i}_{j}(x):  # 🚀 line {j}\n    return x * {j}" for j in range(12))
            codes.append(code)
            blocks.append(f"```python\n{code}\n```")
        else:
            blocks.append(f"Paragraph {i} 😀 explains **step {i}** in detail: " + "lorem ipsum dolor sit amet " * 14)
    blocks.insert(3, "- first point\n- second point\n- third point")
    return "\n\n".join(blocks), codes


@pytest.mark.parametrize("where", ["private", "group"])
async def test_a_10000_character_answer_is_split_at_boundaries(start_bridge, where):
    tb = await start_bridge()
    answer, codes = long_answer()
    assert len(answer) >= 10_000
    tb.dify.plan(Plan(answer=answer))
    chat = PRIVATE if where == "private" else GROUP
    tb.tg.push_update(tu.private_message("explain it all") if where == "private" else ask_group("explain it all"))
    expected, _ = convert(answer)
    flat = re.sub(r"\s+", "", expected)
    await tb.tg.wait_for(lambda f: re.sub(r"\s+", "", "".join(f.final_text(chat))) == flat, timeout=20)
    sent = tb.tg.chats[chat]
    assert len(sent) >= 3
    assert all(utf16_len(m.text) <= 4096 for m in sent)
    for code in codes:
        pres = [entity_text(m.text, e) for m in sent for e in m.entities if e["type"] == "pre"]
        assert code in pres, "every code block is one whole pre entity in one message"
    assert errors(tb.tg) == []


async def test_unbalanced_markdown_is_delivered_without_error(polling):
    tb = polling
    broken = "**bold without end and `code"
    tb.dify.plan(Plan(answer=broken, token_gap=0.02),
                 Plan(answer="Look:\n\n```python\nprint('never closed')\n", token_gap=0.02))
    tb.tg.push_update(tu.private_message("break it"))
    await tb.tg.wait_for(lambda f: f.final_text(PRIVATE) == [broken])
    tb.tg.push_update(tu.private_message("an open fence"))
    await tb.tg.wait_for(lambda f: len(f.final_text(PRIVATE)) == 2)
    last = tb.tg.chats[PRIVATE][-1]
    assert last.text == "Look:\n\nprint('never closed')"
    assert [e["type"] for e in last.entities] == ["pre"]
    assert errors(tb.tg) == []


@pytest.mark.parametrize("drafts", [False, "Bad Request: TEXTDRAFT_METHOD_UNAVAILABLE"])
async def test_refused_drafts_fall_back_to_edits_and_it_is_remembered(start_bridge, drafts):
    tb = await start_bridge(drafts=drafts)
    first = "The first answer grows by edits instead."
    tb.dify.plan(Plan(answer=first, token_gap=0.03), Plan(answer="The second one too.", token_gap=0.03))
    tb.tg.push_update(tu.private_message("one"))
    await tb.tg.wait_for(lambda f: f.final_text(PRIVATE) == [first])
    assert len(tb.tg.calls_to("sendMessageDraft")) == 1
    assert tb.tg.chats[PRIVATE][0].edits, "the fallback edits one message"
    tb.tg.push_update(tu.private_message("two", user_id=2002))
    await tb.tg.wait_for(lambda f: f.final_text(2002) == ["The second one too."])
    assert len(tb.tg.calls_to("sendMessageDraft")) == 1, "the refusal is remembered for the bot"


async def test_edit_mode_can_be_forced_for_private_chats(start_bridge):
    tb = await start_bridge(env={"TELEGRAM_STREAM_MODE": "edit"})
    tb.dify.plan(Plan(answer="Edited into place, word by word.", token_gap=0.03))
    tb.tg.push_update(tu.private_message("hi"))
    await tb.tg.wait_for(lambda f: f.final_text(PRIVATE) == ["Edited into place, word by word."])
    assert tb.tg.calls_to("sendMessageDraft") == [] and tb.tg.chats[PRIVATE][0].edits


async def test_typing_is_renewed_until_the_first_words_show(polling):
    tb = polling  # typing_interval is 0.3 s in these tests
    tb.dify.plan(Plan(answer="Finally here.", first_token_delay=1.0))
    tb.tg.push_update(ask_group("slow one"))
    await tb.tg.wait_for(lambda f: f.final_text(GROUP) == ["Finally here."])
    first_text = tb.tg.chats[GROUP][0].history[0]["time"]
    before = [a for a in tb.tg.chat_actions if a["time"] < first_text]
    assert len(before) >= 3 and all(a["action"] == "typing" and a["chat_id"] == GROUP for a in before)
    assert len(tb.tg.chat_actions) <= len(before) + 1, "typing stops once the answer shows"


async def test_a_dify_error_is_one_short_line_and_a_partial_answer_keeps_a_footer(polling):
    tb = polling
    tb.dify.plan(Plan(http_error=(429, "too_many_requests", "Too many requests")),
                 Plan(http_error=(429, "too_many_requests", "Too many requests")),
                 Plan(answer="Half of an answer that never ends", error_after=4, token_gap=0.02))
    tb.tg.push_update(tu.private_message("busy?"))
    await tb.tg.wait_for(lambda f: f.final_text(PRIVATE))
    assert tb.sent(PRIVATE) == ["Dify is busy, try again in a minute."]
    tb.tg.push_update(ask_group("fail half way"))
    await tb.tg.wait_for(lambda f: f.final_text(GROUP) and "stopped:" in f.final_text(GROUP)[0])
    [text] = tb.sent(GROUP)
    assert text == ("Half of an answer\n\nstopped: The model failed to answer; try again, or ask an admin "
                    "if it keeps happening.")
    assert [e["type"] for e in tb.tg.chats[GROUP][0].entities] == ["italic"], "the footer is in italics"
    assert errors(tb.tg) == []
