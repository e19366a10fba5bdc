"""The Knowledge API methods of DifyClient against the fake Dify (0.15.3 and 1.12.1 wire formats)."""

from __future__ import annotations

import io
import json

import pytest
from aiohttp import web

from bots.dify import (
    DifyClient,
    DifyDatasetAPIDisabled,
    DifyDatasetNotFound,
    DifyIndexingTechniqueRequired,
    DifyNotFound,
    DifyUnsupportedFileType,
)
from tests.fakes.fake_dify import FakeDify

DATA = {"indexing_technique": "economy", "process_rule": {"mode": "automatic"}}
UNKNOWN = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
async def client(fake_dify: FakeDify):
    async with DifyClient(fake_dify.url, "app-unused", dataset_api_key=fake_dify.dataset_key, backoff=0.01) as c:
        yield c


async def test_create_by_file_sends_data_and_file_parts(fake_dify, client, tmp_path):
    dsid = fake_dify.add_dataset()
    path = tmp_path / "notes.md"
    path.write_bytes(b"# Notes\n\nDify indexes this.\n")
    seen: list[tuple[int, int]] = []

    async def progress(sent: int, total: int) -> None:
        seen.append((sent, total))

    created = await client.create_document_by_file(dsid, path, "notes.md", data=DATA, mime_type="text/markdown",
                                                    progress=progress)

    request = next(r for r in fake_dify.requests if r.path.endswith("/document/create_by_file"))
    assert json.loads(request.form["data"]) == DATA
    assert request.files["file"] == ("notes.md", path.read_bytes(), "text/markdown")
    assert created["batch"] and created["document"]["name"] == "notes.md"
    assert [d.name for d in fake_dify.documents(dsid)] == ["notes.md"]
    assert seen[-1] == (path.stat().st_size, path.stat().st_size)


async def test_create_by_file_reads_an_open_file_from_its_position(fake_dify, client):
    dsid = fake_dify.add_dataset()
    fileobj = io.BytesIO(b"HEADER-plain text body")
    fileobj.seek(len(b"HEADER-"))
    await client.create_document_by_file(dsid, fileobj, "body.txt", data=DATA)
    assert fake_dify.documents(dsid)[0].file.content == b"plain text body"


async def test_create_by_text(fake_dify, client):
    dsid = fake_dify.add_dataset()
    created = await client.create_document_by_text(dsid, "Policy", "Refunds within 30 days.", data=DATA)
    body = next(r for r in fake_dify.requests if r.path.endswith("/document/create_by_text")).json
    assert body == {**DATA, "name": "Policy", "text": "Refunds within 30 days."}
    assert created["document"]["name"] == "Policy"
    items = await client.indexing_status(dsid, created["batch"])
    assert items[0]["id"] == created["document"]["id"]


async def test_unknown_dataset_is_a_typed_error_on_both_versions(client):
    # 0.15: 400 invalid_param "Dataset is not exist."; 1.12: 404 not_found "Dataset not found. You have requested…"
    with pytest.raises(DifyDatasetNotFound):
        await client.create_document_by_text(UNKNOWN, "x", "y", data=DATA)
    with pytest.raises(DifyDatasetNotFound):
        await client.find_dataset(UNKNOWN)


async def test_get_dataset_is_1x_only_and_find_dataset_works_on_both(fake_dify, client):
    dsid = fake_dify.add_dataset(name="hq", indexing_technique="high_quality")
    got = await client.get_dataset(dsid)
    if fake_dify.version == "0.15":
        assert got is None  # 0.15.3 answers 405 on GET /datasets/{id}
    else:
        assert got["indexing_technique"] == "high_quality"
    assert (await client.find_dataset(dsid))["name"] == "hq"


async def test_unknown_batch_is_not_found_but_not_a_missing_dataset(fake_dify, client):
    dsid = fake_dify.add_dataset()
    with pytest.raises(DifyNotFound) as caught:
        await client.indexing_status(dsid, "nonexistentbatch")
    assert not isinstance(caught.value, DifyDatasetNotFound)


async def test_delete_document_accepts_200_and_204(fake_dify, client):
    fake_dify.indexing_steps = ["completed"]
    dsid = fake_dify.add_dataset()
    created = await client.create_document_by_text(dsid, "Old", "old text", data=DATA)
    await client.indexing_status(dsid, created["batch"])
    await client.delete_document(dsid, created["document"]["id"])
    assert (await client.list_documents(dsid))["data"] == []


async def test_dify_refusals_are_typed(fake_dify, client, tmp_path):
    empty = fake_dify.add_dataset(name="empty", indexing_technique=None)
    closed = fake_dify.add_dataset(name="closed", enable_api=False)
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ\x90\x00")
    with pytest.raises(DifyUnsupportedFileType):
        await client.create_document_by_file(empty, exe, "tool.exe", data=DATA)
    with pytest.raises(DifyIndexingTechniqueRequired):
        await client.create_document_by_text(empty, "x", "y", data={"process_rule": {"mode": "automatic"}})
    with pytest.raises(DifyDatasetAPIDisabled):
        await client.create_document_by_text(closed, "x", "y", data=DATA)


async def test_falls_back_to_hyphen_paths_on_a_route_404_and_remembers(aiohttp_server):
    """A server without the underscore aliases (as the newest Dify may one day be) still gets documents."""
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.path)
        if "create_by_text" in request.path:
            message = ("The requested URL was not found on the server. If you entered the URL manually please check"
                       f" your spelling and try again. You have requested this URI [{request.path}] but did you mean"
                       " /v1/datasets/<uuid:dataset_id>/document/create-by-text ?")
            return web.json_response({"code": "not_found", "message": message, "status": 404}, status=404)
        return web.json_response({"document": {"id": "d1", "name": "x"}, "batch": "b1"})

    app = web.Application()
    app.router.add_post("/v1/datasets/{ds}/document/{kind}", handler)
    server = await aiohttp_server(app)
    async with DifyClient(str(server.make_url("/v1")), "app-x", dataset_api_key="dataset-x") as client:
        assert (await client.create_document_by_text(UNKNOWN, "x", "y", data=DATA))["batch"] == "b1"
        await client.create_document_by_text(UNKNOWN, "x", "y", data=DATA)
    assert [p.rsplit("/", 1)[1] for p in seen] == ["create_by_text", "create-by-text", "create-by-text"]
