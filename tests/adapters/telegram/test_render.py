"""Markdown → Telegram text + entities, and splitting at 4,096 UTF-16 units (pure functions)."""

from __future__ import annotations

import re

from telegram import Update

from adapters.telegram.render import append_line, convert, render_parts, split_text, utf16_len
from adapters.telegram.updates import Identity, classify
from tests.helpers import telegram_updates as tu

ME = Identity(123456, "dify_test_bot")


def covered(text: str, entity: dict) -> str:
    data = text.encode("utf-16-le")
    return data[2 * entity["offset"]:2 * (entity["offset"] + entity["length"])].decode("utf-16-le")


def test_half_written_markdown_never_breaks():
    for prefix in ("**bo", "[link_with_und", "`code", "```py\nx = 1", "| a | b |\n|---", "> quote **x"):
        [part] = render_parts(prefix)
        assert part.text and all(e["offset"] + e["length"] <= utf16_len(part.text) for e in part.entities)


def test_an_oversize_code_block_becomes_several_whole_pre_entities():
    code = "\n".join(f"line {i} " + "x" * 60 for i in range(200))
    parts = render_parts(f"Intro.\n\n```\n{code}\n```\n\nOutro.")
    assert len(parts) >= 4 and all(utf16_len(p.text) <= 4096 for p in parts)
    pres = [covered(p.text, e) for p in parts for e in p.entities if e["type"] == "pre"]
    assert "\n".join(pres) == code, "every line once, cut only between lines"
    assert parts[0].text == "Intro." and parts[-1].text.endswith("Outro.")


def test_entities_spanning_a_cut_are_clipped_into_both_parts():
    text = "a" * 50 + " " + "b" * 50
    parts = split_text(text, [{"type": "bold", "offset": 40, "length": 30}], 60)
    assert [p.text for p in parts] == ["a" * 50, "b" * 50]
    assert parts[0].entities == ({"type": "bold", "offset": 40, "length": 10},)
    assert parts[1].entities == ({"type": "bold", "offset": 0, "length": 19},)


def test_utf16_is_the_unit():
    text = "😀" * 3000  # 6000 UTF-16 units in 3000 characters
    parts = split_text(text, [], 4096)
    assert [utf16_len(p.text) for p in parts] == [4096, 1904]
    assert "".join(p.text for p in parts) == text


def test_a_footer_joins_the_last_part_with_its_own_entities():
    [part] = render_parts("**Partial** answer")
    [joined] = append_line(part, "_stopped: interrupted_")
    assert joined.text == "Partial answer\n\nstopped: interrupted"
    assert [covered(joined.text, e) for e in joined.entities] == ["Partial", "stopped: interrupted"]
    assert len(append_line(render_parts("x" * 4090)[0], "_stopped_")) == 2


def test_paragraph_boundaries_are_preferred():
    paragraphs = [f"Paragraph {i}. " + "word " * 150 for i in range(12)]
    parts = render_parts("\n\n".join(paragraphs))
    assert len(parts) > 1
    for part in parts:
        assert re.fullmatch(r"(Paragraph \d+\. (word ?)+\s*)+", part.text), "no paragraph is cut"
    assert convert("\n\n".join(paragraphs))[0].replace("\n", "") == "".join(p.text for p in parts).replace("\n", "")


def _update(data: dict) -> Update:
    return Update.de_json(data, None)  # type: ignore[arg-type]


def test_what_is_answered_in_groups():
    text, entities = tu.mention("hey", "Dify_Test_Bot", "what is RAG?")
    msg = classify(_update(tu.group_message(text, entities=entities, message_id=7)), ME)
    assert msg is not None and msg.text == "hey what is RAG?" and msg.scope == "telegram:-100200:7"
    ask, ask_entities = tu.command("/ask@dify_test_bot  how?")
    msg = classify(_update(tu.group_message(ask, entities=ask_entities)), ME)
    assert msg is not None and msg.text == "how?" and msg.command is None
    lone, lone_entities = tu.mention("", "dify_test_bot")
    assert classify(_update(tu.group_message(lone, entities=lone_entities)), ME).command == "help"
    assert classify(_update(tu.group_message("chatter")), ME) is None
    other, other_entities = tu.command("/help@other_bot")
    assert classify(_update(tu.group_message(other, entities=other_entities)), ME) is None
    reply = tu.group_message("more", reply_to=tu.bot_message(-100200, 3, "an answer"))
    assert classify(_update(reply), ME).reply_to_bot == 3
    topic = classify(_update(tu.group_message(text, entities=entities, message_thread_id=5, is_topic_message=True)), ME)
    assert topic.scope == "telegram:-100200:topic:5" and topic.thread_id == 5 and topic.reply_to_bot is None


def test_what_is_answered_in_private_chats():
    msg = classify(_update(tu.private_message("  hello  ", user_id=9)), ME)
    assert msg is not None and msg.text == "hello" and msg.scope == "telegram:9" and msg.dify_user == "telegram:9"
    new, entities = tu.command("/new")
    assert classify(_update(tu.private_message(new, entities=entities)), ME).command == "new"
    path, path_entities = tu.command("/etc/hosts is what?")
    assert classify(_update(tu.private_message(path, entities=path_entities)), ME).text == "/etc/hosts is what?"
