"""The fake Dify API checked against the real 0.15.3 and 1.12.1 recordings in tests/data/, over plain httpx."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from itertools import groupby
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from tests.fakes.fake_dify import Conversation, FakeDify, Message, Plan
from tests.fakes.fake_dify_recordings import Recording, load_recording

VERSIONS = ["0.15", "1.12"]
USER = "oracle-user-1"
CONTENTS = {
    "upload.png": b"\x89PNG\r\n\x1a\n" + b"\0" * 61,
    "upload.txt": b"hello upload txt\n",
    "doc1.txt": b"Oracle text file.\n\nIt has two paragraphs about Dify datasets and indexing.\n",
    "doc2.md": b"# Oracle markdown\n\nA second document, in markdown, about Dify knowledge bases.\n",
    "bad.exe": b"MZ\x90\x00fake executable",
}


def key_of(rec: Recording) -> str:
    return rec.headers["Authorization"].split()[1]


def shape(value: Any) -> Any:
    """Recursive key structure (dict keys, first list item); scalar values are ignored."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], (dict, list)):
        return [shape(value[0])]
    return None


def names(events: list[dict]) -> list[str]:
    return [e["event"] for e in events]


def collapsed(events: list[dict]) -> list[str]:
    return [name for name, _ in groupby(names(events))]


def keys_by_event(events: list[dict]) -> dict[tuple, Any]:
    """Key structure of each kind of event (workflow node events per node)."""
    return {(e["event"], e.get("data", {}).get("node_id")): shape(e) for e in events
            if e["event"] != "message" or e.get("answer")}


def answer_of(events: list[dict]) -> str:
    return "".join(e.get("answer", "") for e in events if e["event"] in ("message", "agent_message"))


@pytest.fixture(params=VERSIONS)
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeDify]:
    async with FakeDify(version=request.param) as f:
        yield f


def app_client(fake: FakeDify, key: str | None = None, timeout: float = 5) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=fake.url, headers={"Authorization": f"Bearer {key or fake.app_key}"},
                             timeout=timeout)


def kb_client(fake: FakeDify) -> httpx.AsyncClient:
    return app_client(fake, fake.dataset_key)


async def stream(client: httpx.AsyncClient, body: dict[str, Any]) -> list[dict]:
    out: list[dict] = []
    async with aconnect_sse(client, "POST", "/chat-messages", json={"response_mode": "streaming", **body}) as es:
        assert es.response.headers["content-type"] == "text/event-stream; charset=utf-8"
        async for sse in es.aiter_sse():
            out.append({"event": "ping"} if sse.event == "ping" else json.loads(sse.data))
    return out


def chat(query: str, **extra: Any) -> dict[str, Any]:
    return {"inputs": {}, "query": query, "user": USER, **extra}


# ---- streams compared with the recordings ------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("number", "mode"), [(1, "chat"), (70, "agent-chat"), (80, "advanced-chat")])
async def test_stream_matches_recording(version: str, number: int, mode: str) -> None:
    rec = load_recording(version, number)
    recorded = rec.events()
    async with FakeDify(version=version, app_mode=mode) as fake, app_client(fake) as client:
        events = await stream(client, chat(rec.request_json["query"]))
    assert names(events) == names(recorded)
    assert keys_by_event(events) == keys_by_event(recorded)
    assert answer_of(events) == answer_of(recorded)
    assert len({e["conversation_id"] for e in events}) == 1 and "task_id" in events[0]
    if mode == "advanced-chat":
        assert [e["data"].get("node_id") for e in events if "data" in e] == [
            e["data"].get("node_id") for e in recorded if "data" in e]


@pytest.mark.parametrize("version", VERSIONS)
async def test_continue_conversation_and_blocking(version: str) -> None:
    async with FakeDify(version=version) as fake, app_client(fake) as client:
        first = await stream(client, chat("Hello Dify, first message"))
        cid = first[0]["conversation_id"]
        rec = load_recording(version, 2)
        second = await stream(client, chat(rec.request_json["query"], conversation_id=cid))
        assert {e["conversation_id"] for e in second} == {cid}
        assert collapsed(second) == collapsed(rec.events()) and answer_of(second) == answer_of(rec.events())
        assert second[0]["task_id"] != first[0]["task_id"] and second[0]["message_id"] != first[0]["message_id"]
        rec = load_recording(version, 4)
        resp = await client.post("/chat-messages", json={**rec.request_json, "conversation_id": cid})
        assert resp.headers["content-type"] == rec.response_headers["Content-Type"]
        assert shape(resp.json()) == shape(rec.json) and resp.json()["answer"] == rec.json["answer"]
        assert resp.json()["conversation_id"] == cid
        assert [m.query for m in fake.conversations[cid].messages] == [
            "Hello Dify, first message", "Second message in same conversation", "Blocking follow-up"]
        other = await client.post("/chat-messages", json=chat("hi", conversation_id=cid, user="someone-else"))
        assert other.status_code == 404 and other.json()["code"] == "not_found"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("number", [32, 83])
async def test_model_failure_stream_matches_recording(version: str, number: int) -> None:
    rec = load_recording(version, number)
    mode = "advanced-chat" if number == 83 else "chat"
    async with FakeDify(version=version, app_mode=mode) as fake, app_client(fake) as client:
        fake.plan(Plan(error_after=0))
        events = await stream(client, chat(rec.request_json["query"]))
    recorded = rec.events()
    assert names(events) == names(recorded) and keys_by_event(events) == keys_by_event(recorded)
    assert (events[-1]["code"], events[-1]["status"]) == (recorded[-1]["code"], recorded[-1]["status"])
    strip = (lambda m: m.split("PluginInvokeError")[-1]) if version == "1.12" else (lambda m: m)
    assert strip(events[-1]["message"]) == strip(recorded[-1]["message"])
    statuses = [e["data"].get("status") for e in events if e["event"].endswith("_finished")]
    assert statuses == [e["data"].get("status") for e in recorded if e["event"].endswith("_finished")]


@pytest.mark.parametrize("version", VERSIONS)
async def test_model_failure_blocking_matches_recording(version: str) -> None:
    rec = load_recording(version, 33)
    async with FakeDify(version=version) as fake, app_client(fake) as client:
        fake.plan(Plan(error_after=0))
        resp = await client.post("/chat-messages", json=rec.request_json)
    assert resp.status_code == 400 and resp.json()["code"] == rec.json["code"]
    assert resp.json()["message"].split("PluginInvokeError")[-1] == rec.json["message"].split("PluginInvokeError")[-1]


@pytest.mark.parametrize("version", VERSIONS)
async def test_stop_ends_stream_like_recording_27(version: str) -> None:
    rec = load_recording(version, 27)
    async with FakeDify(version=version) as fake, app_client(fake) as client:
        fake.plan(Plan(token_gap=0.5))
        events: list[dict] = []

        async def consume() -> None:
            async with aconnect_sse(client, "POST", "/chat-messages",
                                    json={**rec.request_json, "response_mode": "streaming"}) as es:
                async for sse in es.aiter_sse():
                    events.append(json.loads(sse.data))
                    if len(events) == 2:
                        stop = await client.post(f"/chat-messages/{events[0]['task_id']}/stop", json={"user": USER})
                        assert stop.json() == {"result": "success"}

        await asyncio.wait_for(consume(), timeout=2)
        assert collapsed(events) == collapsed(rec.events()) and len(events) <= 4
        assert shape(events[-1]) == shape(rec.events()[-1])
        assert events[0]["task_id"] in fake.stopped_tasks and fake.active_streams == 0
        conv = fake.conversations[events[0]["conversation_id"]]
        assert conv.messages[-1].answer == answer_of(events) and answer_of(events).startswith("Hello from ")


async def test_pings_while_waiting(fake: FakeDify) -> None:
    fake.plan(Plan(answer="slow answer", first_token_delay=0.12, token_gap=0.08, ping_every=0.05))
    async with app_client(fake) as client:
        raw = b""
        async with client.stream("POST", "/chat-messages", json=chat("slow", response_mode="streaming")) as resp:
            async for chunk in resp.aiter_bytes():
                raw += chunk
    assert raw.startswith(b"event: ping\n\n") and raw.count(b"event: ping\n\n") >= 3 and b"[DONE]" not in raw
    body = Recording("x", "POST", "/", {}, None, body=raw).events()
    assert collapsed(body)[0] == "ping" and "ping" in collapsed(body)[2:]
    assert names(body)[-2:] == ["message", "message_end"] and answer_of(body) == "slow answer"


@pytest.mark.parametrize("version", VERSIONS)
async def test_split_writes_split_utf8(version: str) -> None:
    text = "héllo 你好 🎉"
    async with FakeDify(version=version) as fake, app_client(fake) as client:
        fake.plan(Plan(answer=text, split_writes=1), Plan(answer=text, split_writes=3))
        async with client.stream("POST", "/chat-messages", json=chat("x", response_mode="streaming")) as resp:
            chunks = [c async for c in resp.aiter_raw()]
        events = await stream(client, chat("x"))
    raw = b"".join(chunks)
    assert len(chunks) > 50 and answer_of(events) == text
    if version == "1.12":  # orjson writes raw UTF-8, so some pieces are partial characters
        assert "你好".encode() in raw and any(_undecodable(c) for c in chunks)
    else:  # 0.15's json.dumps escapes non-ASCII
        assert b"h\\u00e9llo " in raw and raw.isascii()


def _undecodable(chunk: bytes) -> bool:
    try:
        chunk.decode()
    except UnicodeDecodeError:
        return True
    return False


# ---- plans: errors, cut-offs, extras ------------------------------------------------------------


async def test_planned_http_errors(fake: FakeDify) -> None:
    fake.plan(Plan(http_error=(429, "too_many_requests", "Too many requests."), retry_after=2),
              Plan(html_error=True), Plan(http_error=(503, "x", "y"), html_error=True))
    async with app_client(fake) as client:
        limited = await client.post("/chat-messages", json=chat("a", response_mode="streaming"))
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "2")
        assert limited.json() == {"code": "too_many_requests", "message": "Too many requests.", "status": 429}
        page = await client.post("/chat-messages", json=chat("b"))
        assert page.status_code == 502 and page.headers["content-type"] == "text/html"
        assert "502 Bad Gateway" in page.text
        assert (await client.post("/chat-messages", json=chat("c"))).status_code == 503
        assert (await client.post("/chat-messages", json=chat("d"))).status_code == 200  # queue empty: default plan
    assert len(fake.chat_requests()) == 4


async def test_error_after_deltas(fake: FakeDify) -> None:
    fake.plan(Plan(answer="one two three", error_after=2))
    async with app_client(fake) as client:
        events = await stream(client, chat("q"))
    assert names(events) == ["message", "message", "error"] and answer_of(events) == "one two "
    assert events[-1]["code"] == ("invalid_param" if fake.version == "1.12" else "completion_request_error")
    assert fake.conversations[events[0]["conversation_id"]].messages[0].status == "error"


async def test_drop_and_hang(fake: FakeDify) -> None:
    fake.plan(Plan(answer="a b c", drop_after=1), Plan(answer="a b c", hang_after=1))
    async with app_client(fake, timeout=0.3) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await stream(client, chat("q"))
        with pytest.raises(httpx.ReadTimeout):
            await stream(client, chat("q"))
    await fake.wait_for(lambda f: f.active_streams == 0, timeout=2)


async def test_extras_files_resources_replace(fake: FakeDify) -> None:
    resources = [{"position": 1, "dataset_name": "kb", "content": "cited"}]
    fake.plan(Plan(answer="raw", replace_with="clean", message_files=[{"url": "http://x/y.png"}],
                   retriever_resources=resources))
    async with app_client(fake) as client:
        events = await stream(client, chat("q"))
    assert collapsed(events) == ["message", "message_file", "message_replace", "message_end"]
    assert events[-3]["url"] == "http://x/y.png" and events[-2]["answer"] == "clean"
    assert events[-1]["metadata"]["retriever_resources"] == resources
    assert fake.conversations[events[0]["conversation_id"]].messages[0].answer == "clean"


async def test_explicit_tokens_and_wait_for_requests(fake: FakeDify) -> None:
    fake.plan(Plan(tokens=["A", "", "B"], first_token_delay=0.2))
    async with app_client(fake) as client:
        task = asyncio.create_task(stream(client, chat("q")))
        (req,) = await fake.wait_for_requests(1)
        assert req.json["query"] == "q" and req.headers["Authorization"] == f"Bearer {fake.app_key}"
        events = await task
    assert [e["answer"] for e in events if e["event"] == "message"] == ["A", "", "B", ""]


# ---- replayed requests: status, code, message, headers and body shape ---------------------------

CHAT_KEY, AGENT_KEY, FLOW_KEY = 1, 70, 80
REPLAYED = [3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 21, 22, 23, 24, 25, 26, 28, 29, 30, 34, 35, 36, 37,
            38, 39, 41, 42, 45, 47, 52, 53, 54, 55, 56, 57, 60, 62, 63, 71, 82, 84, 90, 91, 92, 93]
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def seed(fake: FakeDify, rec: Recording, number: int) -> None:
    """Create the conversations, messages and datasets the recorded request refers to, with the same ids."""
    zero = "00000000-0000-0000-0000-000000000000"
    text = rec.path + (rec.data or "")
    for dsid in re.findall(rf"/datasets/({UUID_RE})", text):
        if dsid != zero:
            fake.add_dataset(id=dsid, name=f"kb-{dsid[:4]}")
    for cid in re.findall(rf"(?:conversations/|conversation_id\W+)({UUID_RE})", text):
        if cid != zero:
            conv = Conversation(id=cid, user=USER, app=fake.app_mode, deleted=number == 38)
            conv.messages.append(Message(id="m", conversation_id=cid, query="q", inputs={}, task_id="t"))
            fake.conversations[cid] = conv
    for mid in re.findall(rf"/messages/({UUID_RE})", text):
        if mid != zero:
            conv = Conversation(id=f"c-{mid}", user=USER, app=fake.app_mode)
            conv.messages.append(Message(id=mid, conversation_id=conv.id, query="q", inputs={}, task_id="t",
                                         feedback={"rating": "like"}))
            fake.conversations[conv.id] = conv


async def replay(fake: FakeDify, rec: Recording) -> httpx.Response:
    files: dict[str, Any] = {}
    for arg in rec.form:
        name, _, value = arg.partition("=")
        value, _, ctype = value.partition(";type=")
        if value.startswith("@./"):
            files[name] = (value[3:], CONTENTS[value[3:]], ctype)
        else:
            files[name] = (None, value, ctype or None)
    async with httpx.AsyncClient(base_url=fake.url, timeout=5) as client:
        return await client.request(rec.method, rec.path, headers=rec.headers, content=rec.data,
                                    files=files or None)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("number", REPLAYED)
async def test_replayed_request_matches_recording(version: str, number: int) -> None:
    rec = load_recording(version, number)
    mode_key = AGENT_KEY if 70 <= number < 80 else FLOW_KEY if 80 <= number < 90 else CHAT_KEY
    app_mode = {AGENT_KEY: "agent-chat", FLOW_KEY: "advanced-chat"}.get(mode_key, "chat")
    fake = FakeDify(version=version, app_mode=app_mode, app_key=key_of(load_recording(version, mode_key)),
                    dataset_key=key_of(load_recording(version, 40)))
    async with fake:
        seed(fake, rec, number)
        resp = await replay(fake, rec)
    assert (resp.status_code, resp.reason_phrase) == (rec.status, rec.reason)
    assert resp.headers.get("content-type") == rec.response_headers.get("Content-Type")
    assert resp.headers.get("www-authenticate") == rec.response_headers.get("WWW-Authenticate")
    if rec.status == 204:
        assert resp.content == b""
        return
    got, want = resp.json(), rec.json
    assert shape(got) == shape(want)
    if "code" in want:
        assert got["code"] == want["code"]
        if number == 57:  # the upload id inside pydantic's input_value differs
            got["message"], want["message"] = got["message"][:60], want["message"][:60]
        assert got["message"] == want["message"]


# ---- other app endpoints ----------------------------------------------------------------------


async def test_conversations_messages_feedback(fake: FakeDify) -> None:
    async with app_client(fake) as client:
        events = await stream(client, chat("Hello Dify, first message"))
        cid, mid = events[0]["conversation_id"], events[0]["message_id"]
        await client.post("/chat-messages", json=chat("Blocking follow-up", conversation_id=cid))
        listed = (await client.get("/messages", params={"conversation_id": cid, "user": USER})).json()
        assert shape(listed) == shape(load_recording(fake.version, 19).json)
        assert [m["query"] for m in listed["data"]] == ["Hello Dify, first message", "Blocking follow-up"]
        convs = (await client.get("/conversations", params={"user": USER})).json()
        assert shape(convs) == shape(load_recording(fake.version, 20).json)
        assert convs["data"][0]["name"] == "Fake conversation title"
        assert (await client.get("/conversations", params={"user": "other"})).json()["data"] == []
        like = await client.post(f"/messages/{mid}/feedbacks", json={"rating": "like", "user": USER})
        assert like.json() == {"result": "success"} and fake.feedbacks[-1]["rating"] == "like"
        listed = (await client.get("/messages", params={"conversation_id": cid, "user": USER})).json()
        assert listed["data"][0]["feedback"] == {"rating": "like"}
        assert (await client.get(f"/messages/{mid}/suggested", params={"user": USER})).json()["data"]
        renamed = await client.post(f"/conversations/{cid}/name", json={"name": "mine", "user": USER})
        assert renamed.json()["name"] == "mine"
        first = await client.request("DELETE", f"/conversations/{cid}", json={"user": USER})
        again = await client.request("DELETE", f"/conversations/{cid}", json={"user": USER})
        gone = await client.post("/chat-messages", json=chat("hi", conversation_id=cid))
    if fake.version == "1.12":
        assert (first.status_code, again.status_code) == (204, 204)
    else:
        assert (first.status_code, first.json(), again.status_code) == (200, {"result": "success"}, 404)
    assert gone.status_code == 404 and fake.conversations[cid].deleted


@pytest.mark.parametrize("version", VERSIONS)
async def test_parameters_info_and_required_inputs(version: str) -> None:
    form = [{"text-input": {"label": "City", "variable": "city", "required": True, "max_length": 48, "default": ""}}]
    async with FakeDify(version=version, user_input_form=form, app_mode="advanced-chat") as fake, \
            app_client(fake) as client:
        params = (await client.get("/parameters")).json()
        assert params["user_input_form"] == form
        assert shape({**params, "user_input_form": []}) == shape(load_recording(version, 84).json)
        info = (await client.get("/info")).json()
        assert ("mode" in info, info.get("mode")) == ((True, "advanced-chat") if version == "1.12" else (False, None))
        missing = await client.post("/chat-messages", json=chat("hi", response_mode="streaming"))
        assert (missing.status_code, missing.json()["code"]) == (400, "invalid_param")
        assert missing.json()["message"] == "city is required in input form"
        ok = await client.post("/chat-messages", json={**chat("hi"), "inputs": {"city": "Oslo"}})
        assert ok.json()["mode"] == "advanced-chat"
        later = await client.post("/chat-messages", json=chat("again", conversation_id=ok.json()["conversation_id"]))
        assert later.status_code == 200
        assert fake.conversations[later.json()["conversation_id"]].inputs == {"city": "Oslo"}


async def test_files_upload_keeps_bytes(fake: FakeDify) -> None:
    async with app_client(fake) as client:
        resp = await client.post("/files/upload", data={"user": USER},
                                 files={"file": ("a.png", b"PNGDATA", "image/png")})
    assert resp.status_code == 201 and shape(resp.json()) == shape(load_recording(fake.version, 16).json)
    up = fake.uploads[resp.json()["id"]]
    assert (up.content, up.mime_type, up.user) == (b"PNGDATA", "image/png", USER)
    assert fake.requests[-1].files["file"] == ("a.png", b"PNGDATA", "image/png")


async def test_routes_auth_and_web_pages(fake: FakeDify) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        home = await client.get(fake.root_url + "/")
        page = await client.get(fake.root_url + "/apps")
        unknown = await client.get(fake.url + "/nope", headers={"Authorization": f"Bearer {fake.app_key}"})
        wrong = await client.post(fake.url + "/info", headers={"Authorization": f"Bearer {fake.app_key}"})
        kb_on_app = await client.get(fake.url + "/datasets", headers={"Authorization": f"Bearer {fake.app_key}"})
    assert (home.status_code, page.status_code) == (200, 404) and "text/html" in page.headers["content-type"]
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
    assert ("did you mean" in unknown.json()["message"]) == (fake.version == "1.12")
    assert (wrong.status_code, wrong.json()["code"]) == (405, "method_not_allowed")
    assert (kb_on_app.status_code, kb_on_app.json()["message"]) == (401, "Access token is invalid")


# ---- knowledge ---------------------------------------------------------------------------------


async def test_knowledge_text_document_indexing(fake: FakeDify) -> None:
    dsid = fake.add_dataset(name="kb")
    async with kb_client(fake) as client:
        listed = (await client.get("/datasets")).json()
        assert shape(listed) == shape(load_recording(fake.version, 40).json)
        body = {"name": "doc", "text": "Some text.", "indexing_technique": "economy",
                "process_rule": {"mode": "automatic"}}
        created = (await client.post(f"/datasets/{dsid}/document/create-by-text", json=body)).json()
        assert created["document"]["indexing_status"] == "waiting" and created["batch"].isdigit()
        url = f"/datasets/{dsid}/documents/{created['batch']}/indexing-status"
        polls = [(await client.get(url)).json()["data"][0] for _ in range(6)]
        assert [p["indexing_status"] for p in polls] == fake.indexing_steps + ["completed"]
        assert (polls[-1]["completed_segments"], polls[-1]["total_segments"]) == (1, 1)
        assert shape({"data": [polls[-1]]}) == shape(load_recording(fake.version, 44).json)
        failing = {**body, "name": "bad", "text": "this one has FAILINDEX inside"}
        batch = (await client.post(f"/datasets/{dsid}/document/create_by_text", json=failing)).json()["batch"]
        for _ in range(5):
            last = (await client.get(f"/datasets/{dsid}/documents/{batch}/indexing-status")).json()["data"][0]
        assert last["indexing_status"] == "error" and last["error"].startswith("fake indexing failure: ")
        docs = (await client.get(f"/datasets/{dsid}/documents")).json()
        assert shape(docs) == shape(load_recording(fake.version, 51).json)
        assert [(d["name"], d["display_status"]) for d in docs["data"]] == [("bad", "error"), ("doc", "available")]
        deleted = await client.delete(f"/datasets/{dsid}/documents/{docs['data'][1]['id']}")
    assert deleted.status_code == (204 if fake.version == "1.12" else 200)
    assert [d.name for d in fake.documents(dsid)] == ["bad"]


async def test_knowledge_file_upload_rules(fake: FakeDify) -> None:
    dsid = fake.add_dataset(indexing_technique=None)
    closed = fake.add_dataset(name="closed", enable_api=False)
    fake.upload_limit_mb = 0.001
    data = {"data": json.dumps({"indexing_technique": "high_quality", "process_rule": {"mode": "automatic"}})}
    url = f"/datasets/{dsid}/document/create_by_file"
    async with kb_client(fake) as client:
        no_technique = await client.post(url, files={"file": ("a.txt", b"x", "text/plain")})
        assert no_technique.json()["message"] == "indexing_technique is required."
        no_file = await client.post(url, data=data)
        big = await client.post(url, data=data, files={"file": ("a.txt", b"x" * 2000, "text/plain")})
        ok = await client.post(url.replace("_", "-"), data=data, files={"file": ("notes.md", b"# hi", "text/markdown")})
        blocked = await client.post(f"/datasets/{closed}/document/create_by_file", data=data,
                                    files={"file": ("a.txt", b"x", "text/plain")})
        got = await client.get(f"/datasets/{dsid}")
    assert (no_file.status_code, no_file.json()["code"]) == (400, "no_file_uploaded")
    assert (big.status_code, big.json()["code"]) == (413, "file_too_large")
    assert ok.status_code == 200 and shape(ok.json()) == shape(load_recording(fake.version, 45).json)
    assert fake.documents(dsid)[0].file.content == b"# hi" and fake.datasets[dsid].indexing_technique == "high_quality"
    assert (blocked.status_code, blocked.json()["code"]) == (403, "forbidden")
    assert got.status_code == (200 if fake.version == "1.12" else 405)


async def test_indexing_can_complete_at_first_poll() -> None:
    async with FakeDify(indexing_steps=["completed"]) as fake, kb_client(fake) as client:
        dsid = fake.add_dataset()
        batch = (await client.post(f"/datasets/{dsid}/document/create_by_text",
                                   json={"name": "n", "text": "t"})).json()["batch"]
        status = (await client.get(f"/datasets/{dsid}/documents/{batch}/indexing-status")).json()
    assert status["data"][0]["indexing_status"] == "completed"


async def test_stop_chatflow_reports_stopped_workflow(fake: FakeDify) -> None:
    fake.plan(Plan(mode="advanced-chat", answer="a b c d e f", token_gap=0.5))
    events: list[dict] = []
    async with app_client(fake) as client:
        async with aconnect_sse(client, "POST", "/chat-messages", json=chat("q", response_mode="streaming")) as es:
            async for sse in es.aiter_sse():
                events.append(json.loads(sse.data))
                if events[-1]["event"] == "message":
                    await client.post(f"/chat-messages/{events[-1]['task_id']}/stop", json={"user": USER})
    assert names(events)[-3:] == ["message", "workflow_finished", "message_end"]
    assert events[-2]["data"]["status"] == "stopped" and answer_of(events) == "a "
