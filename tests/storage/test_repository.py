"""Repository behaviour, identical on SQLite and PostgreSQL (see the `db_url` fixture)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage import Repository, create_engine, normalize_database_url


class FakeClock:
    """A settable clock, so age-based behaviour is tested without waiting."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


# --- URLs and engine ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///data/b.db", "sqlite+aiosqlite:///data/b.db"),
        ("sqlite+aiosqlite:////abs/b.db", "sqlite+aiosqlite:////abs/b.db"),
        ("postgres://u:p@h:5432/db", "postgresql+asyncpg://u:p@h:5432/db"),
        ("postgresql://u@h/db?sslmode=require", "postgresql+asyncpg://u@h/db?sslmode=require"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+asyncpg://u@h/db"),
        (" sqlite:///b.db\n", "sqlite+aiosqlite:///b.db"),
    ],
)
def test_normalize_database_url(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected


def test_unsupported_url_names_scheme_but_not_password() -> None:
    with pytest.raises(ValueError, match="mysql") as info:
        normalize_database_url("mysql://root:hunter2@db/bridge")
    assert "hunter2" not in str(info.value)


async def test_sqlite_data_dir_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    async with await Repository.open("sqlite:///data/nested/dify-bridge.db") as repo:
        await repo.save_conversation("telegram", "42", "conv-1", "telegram:7")
    assert (tmp_path / "data" / "nested" / "dify-bridge.db").is_file()


async def test_sqlite_connections_use_wal_and_busy_timeout(tmp_path: Path) -> None:
    async with await Repository.open(f"sqlite:///{tmp_path}/b.db") as repo:
        async with repo.engine.connect() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            busy = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
    assert (mode, busy) == ("wal", 5000)


async def test_ping_and_revision(repo: Repository) -> None:
    assert await repo.ping() is True
    assert await repo.migration_revision() == "0001"


async def test_ping_reports_unreachable_database_without_raising() -> None:
    repo = Repository(create_engine("postgresql://nobody:secret@127.0.0.1:1/none"))
    try:
        assert await repo.ping(timeout=5) is False
    finally:
        await repo.close()


# --- conversations -----------------------------------------------------------------------


async def test_save_conversation_upserts_one_row(db_url: str) -> None:
    clock = FakeClock()
    async with await Repository.open(db_url, clock=clock) as repo:
        assert await repo.get_conversation("slack", "T1:C1:1.0") is None
        await repo.save_conversation("slack", "T1:C1:1.0", "conv-1", "slack:T1:U1")
        clock.advance(minutes=5)
        await repo.save_conversation("slack", "T1:C1:1.0", "conv-2", "slack:T1:U2")

        saved = await repo.get_conversation("slack", "T1:C1:1.0")
        assert saved is not None
        assert (saved.conversation_id, saved.dify_user, saved.app) == ("conv-2", "slack:T1:U2", "default")
        assert saved.created_at == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        assert saved.updated_at == datetime(2026, 1, 1, 12, 5, tzinfo=UTC)
        assert await repo.count("conversations") == 1


async def test_conversations_are_keyed_by_platform_scope_and_app(repo: Repository) -> None:
    long_scope = "T1:C1:" + "9" * 400
    await repo.save_conversation("slack", long_scope, "a", "slack:T1:U1")
    await repo.save_conversation("slack", long_scope, "b", "slack:T1:U1", app="support")
    await repo.save_conversation("telegram", long_scope, "c", "telegram:1")

    got = [await repo.get_conversation(p, long_scope, app) for p, app in
           [("slack", "default"), ("slack", "support"), ("telegram", "default")]]
    assert [g.conversation_id for g in got if g] == ["a", "b", "c"]

    assert await repo.delete_conversation("slack", long_scope) is True
    assert await repo.delete_conversation("slack", long_scope) is False
    assert await repo.get_conversation("slack", long_scope) is None
    assert await repo.get_conversation("slack", long_scope, "support") is not None


async def test_mapping_survives_restart(db_url: str) -> None:
    async with await Repository.open(db_url) as repo:
        await repo.save_conversation("telegram", "-100:7", "conv-9", "telegram:55")
    async with await Repository.open(db_url) as reopened:
        saved = await reopened.get_conversation("telegram", "-100:7")
    assert saved is not None and saved.conversation_id == "conv-9"
    assert saved.created_at.tzinfo is UTC


# --- dedupe ------------------------------------------------------------------------------


async def test_claim_is_true_once(repo: Repository) -> None:
    assert await repo.claim("slack", "Ev1") is True
    assert await repo.claim("slack", "Ev1") is False
    assert await repo.claim("telegram", "Ev1") is True  # keys are per platform


async def test_concurrent_claims_of_one_key_have_one_winner(db_url: str) -> None:
    """50 concurrent deliveries of one event, split over two 'replicas': one answer."""
    async with await Repository.open(db_url) as first, await Repository.open(db_url) as second:
        results = await asyncio.gather(
            *((first if i % 2 else second).claim("slack", "Ev-dup") for i in range(50))
        )
    assert results.count(True) == 1


async def test_concurrent_claims_of_distinct_keys_all_win(repo: Repository) -> None:
    results = await asyncio.gather(*(repo.claim("telegram", f"update-{i}") for i in range(50)))
    assert all(results)
    assert await repo.count("processed_events") == 50


async def test_prune_claims_removes_only_old_ones(db_url: str) -> None:
    clock = FakeClock()
    async with await Repository.open(db_url, clock=clock) as repo:
        await repo.claim("slack", "old-1")
        await repo.claim("slack", "old-2")
        clock.advance(hours=2)
        await repo.claim("slack", "new")

        assert await repo.prune_claims(timedelta(hours=1)) == 2
        assert await repo.prune_claims(timedelta(hours=1)) == 0
        assert await repo.claim("slack", "new") is False
        assert await repo.claim("slack", "old-1") is True  # forgotten after pruning


# --- replies -----------------------------------------------------------------------------


async def test_reply_lifecycle(repo: Repository) -> None:
    location = {"channel": "C1", "thread_ts": "1.0", "ts": None, "nested": {"ü": [1, 2]}}
    rid = await repo.create_reply("slack", "T1:C1:1.0", location=location, conversation_id="c1")
    other = await repo.create_reply("telegram", "42", app="support")
    assert rid != other

    reply = await repo.get_reply(rid)
    assert reply is not None
    assert (reply.state, reply.location, reply.conversation_id) == ("streaming", location, "c1")
    assert reply.created_at.tzinfo is UTC

    await repo.update_reply(rid, dify_message_id="m1", dify_task_id="t1",
                            location={**location, "ts": "2.0"})
    await repo.update_reply(rid, state="done")
    reply = await repo.get_reply(rid)
    assert reply is not None
    assert (reply.state, reply.dify_message_id, reply.dify_task_id) == ("done", "m1", "t1")
    assert reply.location["ts"] == "2.0" and reply.conversation_id == "c1"
    assert await repo.get_reply(other + 1000) is None


async def test_replies_in_state_for_restart_recovery(repo: Repository) -> None:
    a = await repo.create_reply("slack", "s1")
    b = await repo.create_reply("telegram", "s2")
    c = await repo.create_reply("slack", "s3")
    await repo.update_reply(b, state="failed", error="Dify said no")
    await repo.update_reply(c, state="interrupted")

    assert [r.id for r in await repo.replies_in_state("streaming")] == [a]
    assert [r.id for r in await repo.replies_in_state("failed", platform="telegram")] == [b]
    assert await repo.replies_in_state("failed", platform="slack") == []
    assert (await repo.get_reply(b)).error == "Dify said no"  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        await repo.update_reply(a, state="finished")


async def test_many_concurrent_replies_all_persist(repo: Repository) -> None:
    """Writes from many tasks at once (busy timeout/WAL on SQLite) all land."""

    async def answer(i: int) -> int:
        rid = await repo.create_reply("slack", f"scope-{i}", location={"i": i})
        await repo.update_reply(rid, dify_message_id=f"m{i}")
        await repo.update_reply(rid, state="done")
        return rid

    ids = await asyncio.gather(*(answer(i) for i in range(60)))
    assert len(set(ids)) == 60
    done = await repo.replies_in_state("done")
    assert sorted(r.location["i"] for r in done) == list(range(60))


# --- knowledge-base uploads --------------------------------------------------------------


async def test_kb_upload_progress(repo: Repository) -> None:
    uid = await repo.create_kb_upload(
        platform="telegram", user_id="7", scope="42", dataset_id="ds1",
        file_name="handbook.pdf", source="file", size=3_000_000_000,
        location={"chat_id": 42, "message_id": 9},
    )
    upload = await repo.get_kb_upload(uid)
    assert upload is not None
    assert (upload.state, upload.size, upload.location) == ("received", 3_000_000_000,
                                                           {"chat_id": 42, "message_id": 9})

    await repo.update_kb_upload(uid, state="indexing", stage="splitting", document_id="doc1",
                                batch="b1", segments_done=3, segments_total=10)
    await repo.update_kb_upload(uid, error="temporary", stage=None)
    upload = await repo.get_kb_upload(uid)
    assert upload is not None
    assert (upload.state, upload.stage, upload.document_id, upload.batch) == (
        "indexing", None, "doc1", "b1")
    assert (upload.segments_done, upload.segments_total, upload.error) == (3, 10, "temporary")

    with pytest.raises(ValueError, match="colour"):
        await repo.update_kb_upload(uid, colour="red")
    with pytest.raises(ValueError):
        await repo.update_kb_upload(uid, state="done")
    with pytest.raises(ValueError):
        await repo.update_kb_upload(uid, id=5)


async def test_kb_unfinished_and_per_user_listing(db_url: str) -> None:
    clock = FakeClock()
    async with await Repository.open(db_url, clock=clock) as repo:
        ids = {}
        for name, platform, user, state in [
            ("a.txt", "slack", "U1", "completed"),
            ("b.txt", "slack", "U1", "indexing"),
            ("c.txt", "telegram", "U1", "uploading"),
            ("d.txt", "slack", "U1", "error"),
            ("e.txt", "slack", "U2", "received"),
        ]:
            clock.advance(seconds=1)
            ids[name] = await repo.create_kb_upload(
                platform=platform, user_id=user, scope="s", dataset_id="ds",
                file_name=name, source="text",
            )
            await repo.update_kb_upload(ids[name], state=state)

        unfinished = await repo.kb_uploads_unfinished()
        assert [u.file_name for u in unfinished] == ["b.txt", "c.txt", "e.txt"]
        assert [u.file_name for u in await repo.kb_uploads_unfinished("telegram")] == ["c.txt"]

        mine = await repo.kb_uploads_for_user("slack", "U1")
        assert [u.file_name for u in mine] == ["d.txt", "b.txt", "a.txt"]
        assert [u.file_name for u in await repo.kb_uploads_for_user("slack", "U1", 2)] == [
            "d.txt", "b.txt"]


async def test_claim_all_is_true_only_when_every_key_is_new(repo):
    assert await repo.claim_all("slack", ["Ev1", "msg:C1:1.0"])
    assert not await repo.claim_all("slack", ["Ev2", "msg:C1:1.0"]), "same message, another event"
    assert not await repo.claim("slack", "Ev2"), "the new key was recorded anyway"
    assert not await repo.claim_all("slack", ["Ev1", "msg:C1:2.0"]), "a retried delivery"
    assert await repo.claim_all("slack", ["Ev3", "msg:C1:3.0"])
