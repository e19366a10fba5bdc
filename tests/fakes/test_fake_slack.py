"""The fake Slack Web API, exercised through the real slack_sdk AsyncWebClient and slack_bolt AsyncApp."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.fake_slack import FakeSlack, RateLimit
from tests.helpers.slack_events import (
    app_mention, channel_message, dm_message, event_envelope, message_shortcut_form, new_ts, post_signed, sign,
    slash_command_form,
)

SECRET = "test-signing-secret"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as f:
        yield f


def client_for(fake: FakeSlack, token: str | None = None) -> AsyncWebClient:
    return AsyncWebClient(token=token if token is not None else fake.bot_token, base_url=fake.api_url, timeout=5)


async def api_error(coro) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await coro
    return info.value


async def test_auth_test_and_bad_tokens(fake: FakeSlack) -> None:
    res = await client_for(fake).auth_test()
    assert (res["user_id"], res["bot_id"], res["team_id"]) == ("U0BOT", "B0BOT", "T0TEST")
    assert fake.calls[0].headers["Authorization"] == "Bearer xoxb-test-token"
    assert (await api_error(client_for(fake, "xoxb-wrong").auth_test())).response["error"] == "invalid_auth"
    assert (await api_error(client_for(fake, "").auth_test())).response["error"] == "not_authed"
    err = await api_error(client_for(fake).api_call("chat.fly"))
    assert err.response["error"] == "unknown_method"
    err = await api_error(client_for(fake).apps_connections_open(app_token=fake.bot_token))
    assert err.response["error"] == "not_allowed_token_type"
    res = await client_for(fake).apps_connections_open(app_token=fake.app_token)
    assert res["url"].startswith("ws://")


async def test_post_update_round_trip(fake: FakeSlack) -> None:
    client = client_for(fake)
    parent = new_ts()
    res = await client.chat_postMessage(channel="C1", thread_ts=parent, text="Thinking…")
    assert res["message"]["bot_id"] == "B0BOT" and res["message"]["thread_ts"] == parent
    await client.chat_update(channel="C1", ts=res["ts"], text="fallback",
                             blocks=[{"type": "markdown", "text": "**Answer** one"}])
    [msg] = fake.thread("C1", parent)
    assert fake.final_text(msg) == "**Answer** one"
    assert msg.updates == 1 and msg.history == ["Thinking…", "**Answer** one"]
    assert fake.calls_to("chat.update")[0].args["ts"] == res["ts"]
    second = await client.chat_postMessage(channel="C1", thread_ts=parent, markdown_text="# Part 2")
    assert float(second["ts"]) > float(res["ts"])
    assert [fake.final_text(m) for m in fake.thread("C1", parent)] == ["**Answer** one", "# Part 2"]
    err = await api_error(client.chat_update(channel="C1", ts="1.000001", text="x"))
    assert err.response["error"] == "message_not_found"


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing:UserWarning")
async def test_post_message_validation(fake: FakeSlack) -> None:
    client = client_for(fake)
    cases = [
        ({"text": "x" * 40_001}, "msg_too_long"),
        ({"text": ""}, "no_text"),
        ({"text": "fallback", "blocks": [{"type": "markdown", "text": "a" * 7000},
                                         {"type": "markdown", "text": "b" * 5001}]}, "invalid_blocks"),
        ({"text": "t", "markdown_text": "**m**"}, "markdown_text_conflict"),
    ]
    for kwargs, error in cases:
        err = await api_error(client.chat_postMessage(channel="C1", **kwargs))
        assert err.response["error"] == error
    assert fake.messages["C1"] == []


async def test_form_bodies_and_token_argument(fake: FakeSlack) -> None:
    blocks = json.dumps([{"type": "markdown", "text": "md"}])
    res = await client_for(fake).api_call("chat.postMessage", data={"channel": "C2", "text": "form", "blocks": blocks})
    assert res["ok"] and fake.final_text(fake.messages["C2"][0]) == "md"
    async with aiohttp.ClientSession() as session:
        async with session.post(fake.api_url + "chat.postMessage",
                                data={"token": fake.bot_token, "channel": "C2", "text": "hi"}) as resp:
            assert resp.status == 200 and (await resp.json())["ok"] is True
    assert fake.messages["C2"][1].text == "hi"


async def test_chat_stream_helper_in_channel(fake: FakeSlack) -> None:
    client = client_for(fake)
    parent = new_ts()
    stream = await client.chat_stream(channel="C1", thread_ts=parent, recipient_team_id="T0TEST",
                                      recipient_user_id="U1", buffer_size=10)
    parts = ["Hello ", "**world**, ", "this is ", "a streamed ", "answer."]
    for part in parts:
        await stream.append(markdown_text=part)
    await stream.stop(markdown_text=" Done.", blocks=[{"type": "context", "elements": [
        {"type": "mrkdwn", "text": "feedback"}]}])
    [msg] = fake.thread("C1", parent)
    assert fake.final_text(msg) == "".join(parts) + " Done."
    assert msg.stream and not msg.streaming and msg.blocks
    assert len(fake.calls_to("chat.startStream")) == 1 and len(fake.calls_to("chat.stopStream")) == 1
    assert fake.calls_to("chat.appendStream") and all(c.ok for c in fake.calls)
    assert fake.calls_to("chat.stopStream")[0].response["message"]["text"] == fake.final_text(msg)


async def test_raw_stream_methods_in_dm(fake: FakeSlack) -> None:
    client = client_for(fake)
    parent = new_ts()
    start = await client.chat_startStream(channel="D1", thread_ts=parent, markdown_text="A")
    await client.chat_appendStream(channel="D1", ts=start["ts"], markdown_text="B")
    stop = await client.chat_stopStream(channel="D1", ts=start["ts"], markdown_text="C")
    assert stop["message"]["text"] == "ABC"
    [msg] = fake.thread("D1", parent)
    assert msg.history == ["A", "AB", "ABC"]
    err = await api_error(client.chat_appendStream(channel="D1", ts=start["ts"], markdown_text="D"))
    assert err.response["error"] == "message_not_in_streaming_state"


async def test_missing_recipient_in_channel(fake: FakeSlack) -> None:
    client = client_for(fake)
    err = await api_error(client.chat_startStream(channel="C1", thread_ts=new_ts(), markdown_text="x"))
    assert err.response["error"] == "missing_recipient_user_id"
    err = await api_error(client.chat_startStream(channel="C1", thread_ts=new_ts(), markdown_text="x",
                                                  recipient_user_id="U1"))
    assert err.response["error"] == "missing_recipient_team_id"
    assert fake.messages["C1"] == []


@pytest.mark.parametrize("refusal", ["channel_type_not_supported", "missing_scope", "unknown_method"])
async def test_native_streaming_refused(refusal: str) -> None:
    async with FakeSlack(native_streaming=refusal) as fake:
        client = client_for(fake)
        err = await api_error(client.chat_startStream(channel="D1", thread_ts=new_ts(), markdown_text="x"))
        assert err.response["error"] == refusal
        res = await client.chat_postMessage(channel="D1", text="fallback works")
        assert res["ok"] and fake.final_text(fake.messages["D1"][0]) == "fallback works"


async def test_stream_expiry_then_update_fallback() -> None:
    async with FakeSlack(stream_expires_after=2) as fake:
        client = client_for(fake)
        start = await client.chat_startStream(channel="D1", thread_ts=new_ts(), markdown_text="one ")
        ts = start["ts"]
        await client.chat_appendStream(channel="D1", ts=ts, markdown_text="two ")
        await client.chat_appendStream(channel="D1", ts=ts, markdown_text="three ")
        for call in (client.chat_appendStream(channel="D1", ts=ts, markdown_text="four"),
                     client.chat_stopStream(channel="D1", ts=ts)):
            assert (await api_error(call)).response["error"] == "message_not_in_streaming_state"
        msg = fake.messages["D1"][0]
        assert msg.expired and fake.final_text(msg) == "one two three "
        await client.chat_update(channel="D1", ts=ts, text="one two three four")
        assert fake.final_text(msg) == "one two three four"


async def test_stream_ttl_expiry() -> None:
    async with FakeSlack(stream_ttl=0) as fake:
        client = client_for(fake)
        start = await client.chat_startStream(channel="D1", thread_ts=new_ts(), markdown_text="partial")
        err = await api_error(client.chat_appendStream(channel="D1", ts=start["ts"], markdown_text="more"))
        assert err.response["error"] == "message_not_in_streaming_state"
        assert fake.messages["D1"][0].expired and fake.final_text(fake.messages["D1"][0]) == "partial"


async def test_stream_cumulative_cap(fake: FakeSlack) -> None:
    client = client_for(fake)
    start = await client.chat_startStream(channel="D1", thread_ts=new_ts(), markdown_text="x" * 11_000)
    err = await api_error(client.chat_appendStream(channel="D1", ts=start["ts"], markdown_text="y" * 1_001))
    assert err.response["error"] == "msg_too_long"


async def test_rate_limit_answers_429_with_retry_after() -> None:
    async with FakeSlack(limits={"chat.postMessage": RateLimit(2, 60, "channel")}) as fake:
        client = client_for(fake)
        await client.chat_postMessage(channel="C1", text="1")
        await client.chat_postMessage(channel="C1", text="2")
        err = await api_error(client.chat_postMessage(channel="C1", text="3"))
        assert err.response.status_code == 429 and err.response["error"] == "ratelimited"
        retry_after = int(err.response.headers["Retry-After"])
        assert 1 <= retry_after <= 60
        await client.chat_postMessage(channel="C2", text="other channel has its own budget")
        assert fake.ratelimited == 1
        assert [m.text for m in fake.messages["C1"]] == ["1", "2"]
        assert fake.calls_to("chat.postMessage")[2].status == 429


async def test_sdk_rate_limit_retry_handler_honours_retry_after() -> None:
    """slack_sdk's own AsyncRateLimitErrorRetryHandler waits Retry-After and then succeeds (takes ~1-2 s)."""
    async with FakeSlack(limits={"chat.update": RateLimit(1, 1.0)}) as fake:
        client = client_for(fake)
        client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
        posted = await client.chat_postMessage(channel="C1", text="v0")
        await client.chat_update(channel="C1", ts=posted["ts"], text="v1")
        await client.chat_update(channel="C1", ts=posted["ts"], text="v2")
        statuses = [c.status for c in fake.calls_to("chat.update")]
        assert statuses == [200, 429, 200]
        assert fake.final_text(fake.messages["C1"][0]) == "v2"


async def test_file_download_requires_token(fake: FakeSlack) -> None:
    obj = fake.add_file("notes.txt", b"secret notes", "text/plain", "text")
    assert obj["url_private_download"].startswith(f"{fake.root_url}/files-pri/T0TEST-{obj['id']}/")
    info = await client_for(fake).files_info(file=obj["id"])
    assert info["file"]["size"] == len(b"secret notes")
    async with aiohttp.ClientSession() as session:
        async with session.get(obj["url_private_download"],
                               headers={"Authorization": f"Bearer {fake.bot_token}"}) as resp:
            assert resp.status == 200 and await resp.read() == b"secret notes"
            assert resp.content_type == "text/plain"
        async with session.get(obj["url_private"]) as resp:
            assert resp.status == 200 and resp.content_type == "text/html"
            assert b"secret notes" not in await resp.read()
    assert len(fake.file_downloads) == 2


async def test_set_status_and_wait_for(fake: FakeSlack) -> None:
    client = client_for(fake)
    status = client.assistant_threads_setStatus(channel_id="D1", thread_ts="1.2", status="is thinking…")
    task = asyncio.create_task(status)
    await fake.wait_for(lambda f: bool(f.statuses))
    assert fake.statuses[0]["status"] == "is thinking…"
    await task
    with pytest.raises(TimeoutError, match="assistant.threads.setStatus"):
        await fake.wait_for(lambda f: len(f.statuses) > 1, timeout=0.05)


def test_sign_is_accepted_by_slack_sdk() -> None:
    body = json.dumps(event_envelope(app_mention("hi"))).encode()
    headers = sign(body, SECRET)
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid(body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])
    assert not SignatureVerifier("other").is_valid_request(body, headers)
    assert not verifier.is_valid_request(body, sign(body, SECRET, timestamp=1_000))


def test_event_factories_shapes() -> None:
    mention = app_mention("what's up?", thread_ts="1.1")
    assert mention["text"] == "<@U0BOT> what's up?" and mention["thread_ts"] == "1.1"
    env = event_envelope(mention)
    assert env["type"] == "event_callback" and env["event_id"].startswith("Ev")
    assert env["event_id"] != event_envelope(mention)["event_id"]
    assert dm_message("hi")["channel_type"] == "im"
    upload = channel_message("", files=[{"id": "F1"}])
    assert upload["subtype"] == "file_share" and upload["files"][0]["id"] == "F1"
    assert "client_msg_id" not in channel_message("bot", bot_id="B9", subtype="bot_message")
    form = parse_qs(slash_command_form("/kb", "add docs", response_url="http://x/r").decode())
    assert form["command"] == ["/kb"] and form["text"] == ["add docs"] and form["response_url"] == ["http://x/r"]
    payload = json.loads(parse_qs(message_shortcut_form("save", {"ts": "1.1", "text": "m"}).decode())["payload"][0])
    assert payload["type"] == "message_action" and payload["message_ts"] == "1.1"
    a, b = new_ts(), new_ts()
    assert float(b) > float(a)


async def test_bolt_app_end_to_end(fake: FakeSlack) -> None:
    """Signed events reach a real Bolt AsyncApp over HTTP; its answers land in the fake."""
    app = AsyncApp(client=client_for(fake), signing_secret=SECRET)

    @app.event("app_mention")
    async def on_mention(event, say) -> None:
        await say(text=f"echo: {event['text']}", thread_ts=event["ts"])

    @app.command("/kb")
    async def on_kb(ack, respond, command) -> None:
        await ack()
        await respond(f"added {command['text']}")

    runner = web.AppRunner(app.web_app(path="/slack/events"))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        mention = app_mention("hello")
        status, _ = await post_signed(base, "/slack/events", json.dumps(event_envelope(mention)).encode(), SECRET)
        assert status == 200
        await fake.wait_for(lambda f: bool(f.thread("C1", mention["ts"])))
        assert fake.final_text(fake.thread("C1", mention["ts"])[0]) == "echo: <@U0BOT> hello"
        form = slash_command_form("/kb", "doc.pdf", response_url=fake.response_url("r1"))
        status, _ = await post_signed(base, "/slack/events", form, SECRET,
                                      content_type="application/x-www-form-urlencoded")
        assert status == 200
        await fake.wait_for(lambda f: bool(f.responses["r1"]))
        assert fake.responses["r1"][0]["text"] == "added doc.pdf"
        status, _ = await post_signed(base, "/slack/events", b"{}", "wrong-secret")
        assert status == 401
    finally:
        await runner.cleanup()
