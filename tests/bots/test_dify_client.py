"""DifyClient against the fake Dify: retries only before the first byte, timeouts, framing, errors."""

import socket

import pytest

from bots import dify
from bots.dify import DifyClient
from tests.fakes.fake_dify import Plan


def _client(fake, **kw):
    kw.setdefault("backoff", 0.01)
    return DifyClient(fake.url, fake.app_key, **kw)


async def _answer(client, **kw):
    text = ""
    async for event in client.stream_chat(query=kw.pop("query", "hi"), user="u1", **kw):
        if isinstance(event, (dify.MessageEvent, dify.AgentMessageEvent)):
            text += event.answer
    return text


async def test_utf8_and_lines_split_across_writes_arrive_intact(fake_dify):
    fake_dify.plan(Plan(answer="héllo 你好 🎉 ünïcødé — done", split_writes=3))
    async with _client(fake_dify) as client:
        assert await _answer(client) == "héllo 你好 🎉 ünïcødé — done"


async def test_pings_between_slow_tokens_are_ignored(fake_dify):
    fake_dify.plan(Plan(answer="slow answer", first_token_delay=0.25, ping_every=0.05))
    async with _client(fake_dify) as client:
        assert await _answer(client) == "slow answer"


@pytest.mark.parametrize(
    "first",
    [
        Plan(http_error=(503, "internal_server_error", "Service Unavailable")),
        Plan(http_error=(500, "internal_server_error", "Internal Server Error")),
        Plan(http_error=(429, "too_many_requests", "Too many requests."), retry_after=0),
    ],
)
async def test_retried_before_the_first_byte(fake_dify, first):
    fake_dify.plan(first, first)
    async with _client(fake_dify, max_attempts=3) as client:
        assert (await _answer(client)).startswith("Hello from the fake LLM")
    assert len(fake_dify.chat_requests()) == 3


async def test_retry_after_is_honoured(fake_dify):
    fake_dify.plan(Plan(http_error=(429, "too_many_requests", "Too many requests."), retry_after=0.3))
    async with _client(fake_dify, max_attempts=2) as client:
        await _answer(client)
    first, second = fake_dify.chat_requests()
    assert second.time - first.time >= 0.29


async def test_quota_is_not_retried(fake_dify):
    fake_dify.plan(Plan(http_error=(429, "rate_limit_error", "quota")))
    async with _client(fake_dify, max_attempts=4) as client:
        with pytest.raises(dify.DifyQuotaExceeded):
            await _answer(client)
    assert len(fake_dify.chat_requests()) == 1


async def test_busy_after_all_attempts_raises_busy(fake_dify):
    busy = Plan(http_error=(429, "too_many_requests", "Too many requests."), retry_after=0)
    fake_dify.plan(busy, busy)
    async with _client(fake_dify, max_attempts=2) as client:
        with pytest.raises(dify.DifyBusy) as info:
            await _answer(client)
    assert not info.value.mid_stream and len(fake_dify.chat_requests()) == 2


@pytest.mark.parametrize("plan", [Plan(answer="one two three four", drop_after=2), Plan(answer="one two three four", error_after=2)])
async def test_never_retried_once_the_stream_started(fake_dify, plan):
    fake_dify.plan(plan)
    async with _client(fake_dify, max_attempts=4) as client:
        with pytest.raises(dify.DifyError) as info:
            await _answer(client)
    assert info.value.mid_stream and info.value.partial_answer == "one two "
    assert len(fake_dify.chat_requests()) == 1


async def test_silence_longer_than_the_read_timeout_is_a_timeout(fake_dify):
    fake_dify.plan(Plan(answer="one two three", hang_after=1))
    async with _client(fake_dify, read_timeout=0.3) as client:
        with pytest.raises(dify.DifyTimeout) as info:
            await _answer(client)
    assert info.value.mid_stream and info.value.partial_answer == "one "


async def test_unreachable_dify_is_a_transport_error_after_retries():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with DifyClient(f"http://127.0.0.1:{port}/v1", "app-x", max_attempts=2, backoff=0.01) as client:
        with pytest.raises(dify.DifyTransportError) as info:
            await _answer(client)
    assert "cannot reach Dify" in str(info.value) and "app-x" not in str(info.value)


async def test_web_ui_url_is_reported_as_wrong_base_url(fake_dify):
    async with DifyClient(fake_dify.root_url, fake_dify.app_key, max_attempts=3) as client:
        with pytest.raises(dify.DifyWrongBaseURL) as info:
            await _answer(client)
        assert "web UI" in str(info.value) and "/v1" in str(info.value)
        with pytest.raises(dify.DifyWrongBaseURL):
            await client.parameters()


async def test_html_answer_on_the_api_path_is_wrong_base_url(fake_dify):
    fake_dify.plan(Plan(html_error=True))
    async with _client(fake_dify) as client:
        with pytest.raises(dify.DifyWrongBaseURL):
            await _answer(client)


async def test_bad_key_and_wrong_kind_of_key(fake_dify):
    async with DifyClient(fake_dify.url, "app-wrong") as client:
        with pytest.raises(dify.DifyAuthError):
            await _answer(client)
    async with DifyClient(fake_dify.url, fake_dify.dataset_key) as client:
        with pytest.raises(dify.DifyAuthError):
            await client.parameters()


async def test_other_users_conversation_is_not_found(fake_dify):
    async with _client(fake_dify) as client:
        conversation = None
        async for event in client.stream_chat(query="hi", user="alice"):
            conversation = event.conversation_id
        with pytest.raises(dify.DifyConversationNotFound):
            async for _ in client.stream_chat(query="hi", user="bob", conversation_id=conversation):
                pass


async def test_every_event_family_is_typed(fake_dify):
    fake_dify.plan(Plan(answer="x", replace_with="y", message_files=[{"type": "image", "url": "https://f/x.png"}],
                        retriever_resources=[{"position": 1, "document_name": "doc.md", "content": "c"}]))
    async with _client(fake_dify) as client:
        events = [e async for e in client.stream_chat(query="hi", user="u1")]
    kinds = {type(e) for e in events}
    assert {dify.MessageEvent, dify.MessageReplaceEvent, dify.MessageFileEvent, dify.MessageEndEvent} <= kinds
    end = next(e for e in events if isinstance(e, dify.MessageEndEvent))
    assert end.retriever_resources[0]["document_name"] == "doc.md"
    assert not any(isinstance(e, dify.UnknownEvent) for e in events)


def test_unknown_and_tts_events_parse():
    assert isinstance(dify.parse_event({"event": "brand_new_event"}), dify.UnknownEvent)
    assert isinstance(dify.parse_event({"event": "tts_message", "audio": "AAA"}), dify.TtsMessageEvent)
    assert isinstance(dify.parse_event({"event": "tts_message_end", "audio": ""}), dify.TtsMessageEndEvent)
    assert isinstance(dify.parse_event({"event": "iteration_started", "data": {}}), dify.WorkflowEvent)
    assert isinstance(dify.parse_event({"event": "loop_next", "data": {}}), dify.WorkflowEvent)
    assert isinstance(dify.parse_event({"event": "agent_log", "data": {}}), dify.WorkflowEvent)


async def test_app_endpoints_on_both_versions(fake_dify):
    async with _client(fake_dify) as client:
        conversation, task, message = None, None, None
        async for event in client.stream_chat(query="hello", user="u1"):
            conversation, task, message = event.conversation_id, event.task_id, event.message_id
        assert (await client.stop(task, "u1"))["result"] == "success"
        assert (await client.feedback(message, user="u1", rating="like"))["result"] == "success"
        history = await client.messages(conversation, user="u1")
        assert history["data"][0]["query"] == "hello"
        listed = await client.conversations(user="u1")
        assert listed["data"][0]["id"] == conversation
        renamed = await client.rename_conversation(conversation, user="u1", name="Renamed")
        assert renamed["name"] == "Renamed"
        await client.delete_conversation(conversation, user="u1")
        info = await client.info()
        assert ("mode" in info) == (fake_dify.version == "1.12")
        uploaded = await client.upload_file(user="u1", filename="a.txt", content=b"hello", mime_type="text/plain")
        assert uploaded["id"]
