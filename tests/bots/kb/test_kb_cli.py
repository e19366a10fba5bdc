"""`dify-bridge kb add` / `kb list` as real subprocesses against a FakeDify served by the test's own loop."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from tests.fakes.fake_dify import FakeDify

UNKNOWN = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
async def fake():
    # Dify 1.12 is often done at the first poll (recordings 46/48), so no back-off sleeps here.
    async with FakeDify(version="1.12", indexing_steps=["completed"]) as fake:
        yield fake


def _env(fake: FakeDify, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIFY_", "SLACK_", "TELEGRAM_", "KB_"))}
    env.update(DIFY_API_URL=fake.url, DIFY_DATASET_API_KEY=fake.dataset_key, PYTHONUNBUFFERED="1")
    env.update(extra)
    return {k: v for k, v in env.items() if v}


async def _run(fake: FakeDify, tmp_path, *args: str, **extra: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots.cli", "--env-file", "/nonexistent", "kb", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=_env(fake, **extra), cwd=tmp_path,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_kb_add_prints_one_result_per_file_and_exits_1_on_any_failure(fake, tmp_path):
    fake.indexing_steps = ["indexing", "completed"]  # one "indexing" answer, then done (one 1 s back-off)
    dsid = fake.add_dataset(name="docs")
    (tmp_path / "guide.md").write_text("# Guide\n\nHow to use the bridge.\n")
    (tmp_path / "fake.pdf").write_text("not a pdf")
    code, out, err = await _run(fake, tmp_path, "add", "guide.md", "fake.pdf", "missing.txt", DIFY_DATASET_ID=dsid)
    assert code == 1, err
    assert out.splitlines() == [
        "✅ Indexed as guide.md (1 segment)",
        "❌ fake.pdf: not a real PDF file (its content does not match its name)",
        "❌ missing.txt: no such file",
    ]
    assert "guide.md: uploading [" in err and "guide.md: indexing (indexing)" in err
    assert "Traceback" not in err and fake.dataset_key not in out + err
    assert [d.name for d in fake.documents(dsid)] == ["guide.md"]


async def test_kb_add_exits_0_when_every_file_is_indexed(fake, tmp_path):
    dsid = fake.add_dataset(name="docs")
    (tmp_path / "a.txt").write_text("alpha\n")
    (tmp_path / "b.csv").write_text("name,team\nann,core\n")
    code, out, err = await _run(fake, tmp_path, "add", "a.txt", "b.csv", "--dataset", dsid)
    assert code == 0, err
    assert out.splitlines() == ["✅ Indexed as a.txt (1 segment)", "✅ Indexed as b.csv (1 segment)"]
    assert "[########################] 100%" in err  # the upload bar reached the end


async def test_kb_list_shows_documents_with_status(fake, tmp_path):
    dsid = fake.add_dataset(name="docs")
    (tmp_path / "a.txt").write_text("alpha\n")
    (tmp_path / "b.md").write_text("# FAILINDEX\n")
    await _run(fake, tmp_path, "add", "a.txt", "b.md", DIFY_DATASET_ID=dsid)
    code, out, err = await _run(fake, tmp_path, "list", DIFY_DATASET_ID=dsid)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"2 documents in knowledge base {dsid}:"
    assert lines[1].startswith("❌ b.md (error) — fake indexing failure: FAILINDEX found in b.md")
    assert lines[2] == "✅ a.txt (available)  6 words"


async def test_missing_settings_are_named(fake, tmp_path):
    code, out, err = await _run(fake, tmp_path, "list")
    assert code == 2 and err.startswith("dify-bridge kb: DIFY_DATASET_ID is not set")
    code, out, err = await _run(fake, tmp_path, "add", "x.txt", DIFY_DATASET_ID=UNKNOWN, DIFY_DATASET_API_KEY="")
    assert code == 2 and err.startswith("dify-bridge kb: DIFY_DATASET_API_KEY is not set")


@pytest.mark.parametrize("version", ["0.15", "1.12"])
async def test_unknown_dataset(tmp_path, version):
    async with FakeDify(version=version) as fake:
        (tmp_path / "a.txt").write_text("alpha\n")
        code, out, err = await _run(fake, tmp_path, "add", "a.txt", DIFY_DATASET_ID=UNKNOWN)
        assert code == 1
        assert out.startswith(f"❌ a.txt: the knowledge base {UNKNOWN} does not exist in Dify")
        code, out, err = await _run(fake, tmp_path, "list", DIFY_DATASET_ID=UNKNOWN)
        assert code == 1 and "does not exist in Dify" in err
