"""The client against the real recorded bytes of Dify 0.15.3 and 1.12.1, chunked into 7-byte writes."""

import pytest

from bots import dify
from bots.dify import DifyClient
from tests.helpers.recordings import ReplayServer, load

VERSIONS = ["0.15", "1.12"]


@pytest.fixture
async def replay():
    async with ReplayServer() as server:
        yield server


async def _stream(server, **kw):
    client = DifyClient(server.url, "app-test", max_attempts=1)
    try:
        return [e async for e in client.stream_chat(query="q", user="u", **kw)]
    finally:
        await client.aclose()


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("number", "expected_text"),
    [
        ("01", "Hello from the fake LLM. You said: Hello Dify, first message . This reply is deterministic."),
        ("70", " I can answer directly.\n\nFake agent answer to: Agent, hello"),
        ("80", "Hello from the fake LLM. You said: Chatflow hello . This reply is deterministic."),
    ],
)
async def test_recorded_streams_parse_into_typed_events(replay, version, number, expected_text):
    replay.recording = load(version, number)
    events = await _stream(replay)
    raw = replay.recording.events()
    assert [e.event for e in events] == [r["event"] for r in raw]
    text = "".join(e.answer for e in events if isinstance(e, (dify.MessageEvent, dify.AgentMessageEvent)))
    assert text == expected_text
    end = [e for e in events if isinstance(e, dify.MessageEndEvent)]
    assert len(end) == 1 and end[0].usage["total_tokens"] > 0
    assert all(e.conversation_id == raw[0]["conversation_id"] for e in events)
    assert events[0].task_id
    if number == "70":
        assert any(isinstance(e, dify.AgentThoughtEvent) for e in events)
    if number == "80":
        kinds = {type(e) for e in events}
        assert {dify.WorkflowStartedEvent, dify.NodeStartedEvent, dify.NodeFinishedEvent, dify.WorkflowFinishedEvent} <= kinds
        finished = next(e for e in events if isinstance(e, dify.WorkflowFinishedEvent))
        assert finished.status == "succeeded"


@pytest.mark.parametrize("version", VERSIONS)
async def test_pings_in_a_slow_stream_are_skipped(replay, version):
    replay.recording = load(version, "31")
    assert b"event: ping" in replay.recording.body
    events = await _stream(replay)
    assert events and all(e.event != "ping" for e in events)
    assert isinstance(events[-1], dify.MessageEndEvent)


@pytest.mark.parametrize("version", VERSIONS)
async def test_mid_stream_model_failure_is_a_model_error(replay, version):
    replay.recording = load(version, "32")
    with pytest.raises(dify.DifyModelError) as info:
        await _stream(replay)
    assert info.value.mid_stream and info.value.status == 400


@pytest.mark.parametrize("version", VERSIONS)
async def test_failed_chatflow_raises_workflow_failed_with_the_partial_answer(replay, version):
    replay.recording = load(version, "83")
    with pytest.raises(dify.DifyWorkflowFailed) as info:
        await _stream(replay)
    assert info.value.mid_stream
    assert "fake upstream failure" in info.value.message


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("number", "error"),
    [
        ("05", dify.DifyConversationNotFound),
        ("07", dify.DifyConversationNotFound),
        ("08", dify.DifyInvalidInput),
        ("09", dify.DifyAuthError),
        ("10", dify.DifyAuthError),
        ("11", dify.DifyAuthError),
        ("12", dify.DifyInvalidInput),
        ("90", dify.DifyInvalidInput),
        ("91", dify.DifyInvalidInput),
        ("92", dify.DifyInvalidInput),
    ],
)
async def test_recorded_http_errors_map_to_typed_errors(replay, version, number, error):
    replay.recording = load(version, number)
    with pytest.raises(error) as info:
        await _stream(replay)
    exc = info.value
    assert type(exc) is error
    assert exc.status == replay.recording.status and not exc.mid_stream
    assert len(replay.requests) == 1, "4xx answers are never retried"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("number", "error"),
    [("33", dify.DifyModelError), ("71", dify.DifyInvalidInput), ("06", dify.DifyConversationNotFound)],
)
async def test_recorded_blocking_errors(replay, version, number, error):
    replay.recording = load(version, number)
    client = DifyClient(replay.url, "app-test", max_attempts=1)
    with pytest.raises(error):
        await client.chat_blocking(query="q", user="u")
    await client.aclose()


@pytest.mark.parametrize("version", VERSIONS)
async def test_recorded_blocking_answer(replay, version):
    replay.recording = load(version, "03")
    client = DifyClient(replay.url, "app-test")
    answer = await client.chat_blocking(query="q", user="u")
    await client.aclose()
    assert answer["answer"].startswith("Hello from the fake LLM") and answer["conversation_id"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_recorded_workflow_route_on_chat_app_is_wrong_app_type(replay, version):
    replay.recording = load(version, "93")
    client = DifyClient(replay.url, "app-test", max_attempts=1)
    with pytest.raises(dify.DifyWrongAppType):
        await client._json("POST", "workflows/run", json={"inputs": {}, "user": "u"})
    await client.aclose()


@pytest.mark.parametrize("version", VERSIONS)
async def test_recorded_metadata_and_conversation_calls(replay, version):
    client = DifyClient(replay.url, "app-test")
    replay.recording = load(version, "13")
    assert "user_input_form" in await client.parameters()
    replay.recording = load(version, "14")
    info = await client.info()
    assert info["name"] and (("mode" in info) == (version == "1.12"))
    replay.recording = load(version, "37")
    await client.delete_conversation("c", user="u")  # 200 JSON on 0.15, 204 on 1.12
    replay.recording = load(version, "28")
    assert (await client.stop("t", "u"))["result"] == "success"
    replay.recording = load(version, "25")
    assert await client.suggested("m", user="u")
    replay.recording = load(version, "21")
    assert (await client.feedback("m", user="u", rating="like"))["result"] == "success"
    replay.recording = load(version, "24")
    with pytest.raises(dify.DifyNotFound):
        await client.feedback("m", user="u", rating="like")
    await client.aclose()
