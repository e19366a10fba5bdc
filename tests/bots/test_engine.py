"""The conversation engine against a fake Dify (both versions) and a real SQLite file."""

import asyncio

import pytest

from bots import messages
from tests.bots.conftest import RecordingSink, incoming
from tests.fakes.fake_dify import FakeDify, Plan


def _chat_bodies(fake):
    return [r.json for r in fake.chat_requests()]


async def test_answer_streams_and_the_mapping_is_saved_from_the_first_event(make_engine, fake_dify):
    engine = await make_engine()
    sink = RecordingSink()
    fake_dify.plan(Plan(answer="Hello there, friend."))
    answer = await engine.handle(incoming("hi"), sink)
    assert sink.started and sink.answer is answer and answer.text == "Hello there, friend."
    assert sink.updates[-1] == "Hello there, friend." and len(sink.updates) > 1, "the answer streams"
    assert answer.message_id and answer.task_id and answer.usage
    mapping = await engine.repo.get_conversation("test", "s1")
    assert mapping.conversation_id == answer.conversation_id and mapping.dify_user == "test:u1"
    body = _chat_bodies(fake_dify)[0]
    assert body["response_mode"] == "streaming" and body["conversation_id"] == "" and body["user"] == "test:u1"
    [row] = await engine.repo.replies_in_state("done")
    assert row.dify_message_id == answer.message_id and row.location == {"chat": "test", "message": "m1"}


async def test_second_message_continues_and_the_mapping_survives_a_new_engine(make_engine, fake_dify):
    first = await make_engine()
    a1 = await first.handle(incoming("one"), RecordingSink())
    second = await make_engine()  # a restart: new engine, same database file
    a2 = await second.handle(incoming("two"), RecordingSink())
    bodies = _chat_bodies(fake_dify)
    assert bodies[1]["conversation_id"] == a1.conversation_id == a2.conversation_id
    assert len(fake_dify.conversations) == 1


async def test_a_second_speaker_continues_the_same_conversation_as_its_starter(make_engine, fake_dify):
    engine = await make_engine()
    await engine.handle(incoming("from ann", user="ann"), RecordingSink())
    answer = await engine.handle(incoming("from bob", user="bob"), RecordingSink())
    bodies = _chat_bodies(fake_dify)
    assert [b["user"] for b in bodies] == ["test:ann", "test:ann"]
    assert bodies[1]["conversation_id"] == answer.conversation_id


async def test_stale_conversation_self_heals_once_with_a_short_notice(make_engine, fake_dify):
    engine = await make_engine()
    old = await engine.handle(incoming("one"), RecordingSink())
    fake_dify.conversations[old.conversation_id].deleted = True
    sink = RecordingSink()
    new = await engine.handle(incoming("two"), sink)
    assert new is not None and new.conversation_id != old.conversation_id
    assert sink.notices == [messages.CONVERSATION_RESTARTED] and sink.problem is None
    bodies = _chat_bodies(fake_dify)
    assert [b["query"] for b in bodies] == ["one", "two", "two"], "the same message is sent again, once"
    assert bodies[1]["conversation_id"] == old.conversation_id and bodies[2]["conversation_id"] == ""
    assert (await engine.repo.get_conversation("test", "s1")).conversation_id == new.conversation_id


async def test_new_conversation_forgets_the_mapping(make_engine, fake_dify):
    engine = await make_engine()
    await engine.handle(incoming("one"), RecordingSink())
    assert await engine.new_conversation("test", "s1") is True
    assert await engine.new_conversation("test", "s1") is False
    await engine.handle(incoming("two"), RecordingSink())
    assert _chat_bodies(fake_dify)[1]["conversation_id"] == ""


async def test_other_scopes_never_wait_and_one_scope_stays_in_order(make_engine, fake_dify):
    engine = await make_engine()
    gate = asyncio.Event()
    first_sink, second_sink = RecordingSink(gate=gate), RecordingSink()
    first = asyncio.create_task(engine.handle(incoming("A1", scope="A"), first_sink))
    await asyncio.sleep(0)
    second = asyncio.create_task(engine.handle(incoming("A2", scope="A"), second_sink))
    others = [RecordingSink() for _ in range(50)]
    fake_dify.default_plan = Plan(token_gap=0.001)
    await asyncio.gather(*(engine.handle(incoming(f"q{i}", scope=f"S{i}"), s) for i, s in enumerate(others)))
    assert all(s.answer is not None for s in others), "50 other scopes finished while A was blocked"
    assert not first.done() and not second.done()
    queries = [b["query"] for b in _chat_bodies(fake_dify)]
    assert "A1" not in queries and "A2" not in queries
    gate.set()
    await asyncio.gather(first, second)
    queries = [b["query"] for b in _chat_bodies(fake_dify)]
    assert queries.index("A1") < queries.index("A2")
    assert first_sink.answer.conversation_id == second_sink.answer.conversation_id
    assert len(engine.locks) == 0, "idle scope locks are freed"


async def test_inputs_are_configured_values_over_declared_defaults(fake_dify, make_engine):
    fake_dify.user_input_form = [
        {"text-input": {"label": "Lang", "variable": "lang", "required": True, "default": "English"}},
        {"select": {"label": "Tone", "variable": "tone", "required": False, "default": "neutral", "options": ["neutral", "warm"]}},
    ]
    engine = await make_engine(inputs={"tone": "warm"})
    await engine.handle(incoming("hi"), RecordingSink())
    assert _chat_bodies(fake_dify)[0]["inputs"] == {"lang": "English", "tone": "warm"}


async def test_a_required_input_without_value_is_explained_not_sent(fake_dify, make_engine):
    fake_dify.user_input_form = [{"text-input": {"label": "Company", "variable": "company", "required": True}}]
    engine = await make_engine()
    sink = RecordingSink()
    assert await engine.handle(incoming("hi"), sink) is None
    assert sink.problem.kind == "inputs_missing" and "`company`" in sink.problem.text and "DIFY_INPUTS" in sink.problem.text
    assert fake_dify.chat_requests() == []
    assert await engine.missing_inputs() == ["company"]


@pytest.mark.parametrize(
    ("plan", "kind"),
    [
        (Plan(http_error=(400, "app_unavailable", "App unavailable, please check your app configurations.")), "app_unavailable"),
        (Plan(http_error=(400, "provider_not_initialize", "No valid model provider credentials found.")), "app_unavailable"),
        (Plan(http_error=(429, "rate_limit_error", "Rate limit exceeded")), "quota"),
        (Plan(http_error=(400, "provider_quota_exceeded", "Your quota has been exhausted")), "quota"),
        (Plan(http_error=(400, "not_chat_app", "Please check if your app mode matches the right API route.")), "wrong_app_type"),
        (Plan(html_error=True), "misconfigured"),
    ],
)
async def test_each_error_kind_gives_one_short_line(make_engine, fake_dify, plan, kind):
    engine = await make_engine(max_attempts=2)
    fake_dify.plan(plan)
    sink = RecordingSink()
    assert await engine.handle(incoming("hi"), sink) is None
    assert sink.problem.kind == kind and "\n" not in sink.problem.text and len(sink.problem.text) < 140
    [row] = await engine.repo.replies_in_state("failed")
    assert row.error == kind


async def test_busy_dify_is_retried_before_the_first_byte_then_explained(make_engine, fake_dify):
    engine = await make_engine(max_attempts=3)
    busy = Plan(http_error=(429, "too_many_requests", "Too many requests."), retry_after=0)
    fake_dify.plan(busy, busy, busy)
    sink = RecordingSink()
    await engine.handle(incoming("hi"), sink)
    assert len(fake_dify.chat_requests()) == 3 and sink.problem.kind == "busy"
    assert sink.problem.text == "Dify is busy, try again in a minute."


async def test_mid_stream_error_keeps_the_partial_answer(make_engine, fake_dify):
    engine = await make_engine()
    fake_dify.plan(Plan(answer="one two three four five", error_after=3))
    sink = RecordingSink()
    await engine.handle(incoming("hi"), sink)
    assert sink.problem.kind == "model_error" and sink.problem.partial == "one two three "
    assert len(fake_dify.chat_requests()) == 1, "never retried once the stream started"


async def test_message_replace_replaces_the_whole_answer(make_engine, fake_dify):
    engine = await make_engine()
    fake_dify.plan(Plan(answer="something rude", replace_with="[moderated]"))
    sink = RecordingSink()
    answer = await engine.handle(incoming("hi"), sink)
    assert answer.text == "[moderated]" and sink.updates[-1] == "[moderated]"


async def test_agent_and_chatflow_answers(db_file, tmp_path):
    from tests.bots.conftest import EngineFactory

    for mode, expected in [("agent-chat", " I can answer directly.\n\nFake agent answer to: hi"),
                           ("advanced-chat", "Hello from the fake LLM. You said: hi . This reply is deterministic.")]:
        async with FakeDify(app_mode=mode) as fake:
            factory = EngineFactory(fake, f"sqlite+aiosqlite:///{tmp_path}/{mode}.db")
            engine = await factory()
            answer = await engine.handle(incoming("hi"), RecordingSink())
            assert answer.text == expected
            fake.plan(Plan(mode=mode, workflow_failed=True)) if mode == "advanced-chat" else None
            if mode == "advanced-chat":
                sink = RecordingSink()
                await engine.handle(incoming("again"), sink)
                assert sink.problem.kind == "workflow_failed"
            await factory.close()


async def test_cancelling_an_answer_stops_dify_and_marks_it_interrupted(make_engine, fake_dify):
    engine = await make_engine()
    fake_dify.plan(Plan(answer="a b c d e f g h", token_gap=0.2))
    sink = RecordingSink()
    task = engine.spawn(engine.handle(incoming("hi"), sink))
    await asyncio.wait_for(sink.first_update.wait(), 5)
    await engine.drain(grace=0)
    assert task.cancelled()
    assert sink.problem.kind == "interrupted" and sink.problem.partial
    assert fake_dify.stopped_tasks, "Dify was asked to stop the generation"
    [row] = await engine.repo.replies_in_state("interrupted")
    assert row.dify_task_id in fake_dify.stopped_tasks
    assert engine.accepting is False


async def test_rows_left_streaming_are_handed_back_for_recovery(make_engine, fake_dify):
    engine = await make_engine()
    rid = await engine.repo.create_reply("test", "s9", location={"chat": "c", "message": "m"})
    [row] = await engine.interrupted_replies("test")
    assert row.id == rid and row.location == {"chat": "c", "message": "m"}
    await engine.mark_reply(rid, "interrupted")
    assert await engine.interrupted_replies("test") == []
