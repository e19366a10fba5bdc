"""`dify-bridge chat` as a real subprocess against the fake Dify (piped and on a pseudo-terminal)."""

from __future__ import annotations

import asyncio
import os
import pty
import signal
import sys

from tests.fakes.fake_dify import Plan

SECRET_KEY = "app-test-key"


def _env(fake, tmp_path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIFY_", "SLACK_", "TELEGRAM_"))}
    env.update(
        DIFY_API_URL=fake.url,
        DIFY_API_KEY=fake.app_key,
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/chat.db",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


async def _run(fake, tmp_path, stdin: bytes, **extra) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots.cli", "--env-file", "/nonexistent", "chat",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=_env(fake, tmp_path, **extra), cwd=tmp_path,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_piped_question_prints_the_answer_and_exits_0(fake_dify, tmp_path):
    code, out, err = await _run(fake_dify, tmp_path, b"hi there\n")
    assert code == 0, err
    assert out.strip() == "Hello from the fake LLM. You said: hi there . This reply is deterministic."
    assert "Traceback" not in err


async def test_conversation_is_kept_across_runs(fake_dify, tmp_path):
    await _run(fake_dify, tmp_path, b"first\n")
    await _run(fake_dify, tmp_path, b"second\n")
    first, second = fake_dify.chat_requests()
    assert first.json["conversation_id"] == ""
    assert second.json["conversation_id"] and second.json["user"] == first.json["user"]
    assert first.json["user"].startswith("console:")


async def test_failure_exits_non_zero_with_one_line_and_no_secret(fake_dify, tmp_path):
    fake_dify.plan(Plan(http_error=(400, "provider_not_initialize", "No valid model provider credentials found.")))
    code, out, err = await _run(fake_dify, tmp_path, b"hi\n")
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "model provider" in lines[0]
    assert "Traceback" not in err and SECRET_KEY not in out + err


async def test_wrong_key_says_misconfigured(fake_dify, tmp_path):
    code, _, err = await _run(fake_dify, tmp_path, b"hi\n", DIFY_API_KEY="app-wrong-key-123")
    assert code == 1 and "dify-bridge doctor" in err and "app-wrong-key-123" not in err


async def test_missing_key_is_a_clear_error(fake_dify, tmp_path):
    env = _env(fake_dify, tmp_path)
    env.pop("DIFY_API_KEY")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots.cli", "--env-file", "/nonexistent", "chat",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
    )
    _, err = await proc.communicate(b"hi\n")
    assert proc.returncode == 2 and b"DIFY_API_KEY" in err


class Terminal:
    """Drives `dify-bridge chat` on a pseudo-terminal, as a person would."""

    def __init__(self, fd: int, proc: asyncio.subprocess.Process) -> None:
        self.fd, self.proc, self.buffer = fd, proc, ""
        self._data = asyncio.Event()
        asyncio.get_running_loop().add_reader(fd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            chunk = os.read(self.fd, 4096)
        except OSError:
            chunk = b""
        if not chunk:
            asyncio.get_running_loop().remove_reader(self.fd)
        self.buffer += chunk.decode(errors="replace")
        self._data.set()

    async def expect(self, text: str, timeout: float = 20) -> None:
        async with asyncio.timeout(timeout):
            while text not in self.buffer:
                self._data.clear()
                await self._data.wait()

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.fd)
        os.close(self.fd)


async def _terminal(fake, tmp_path) -> Terminal:
    controller, child = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots.cli", "--env-file", "/nonexistent", "chat",
        stdin=child, stdout=child, stderr=child, env=_env(fake, tmp_path), cwd=tmp_path, start_new_session=True,
    )
    os.close(child)
    return Terminal(controller, proc)


async def test_interactive_new_starts_a_new_conversation(fake_dify, tmp_path):
    term = await _terminal(fake_dify, tmp_path)
    try:
        await term.expect("> ")
        term.send("hello\n")
        await term.expect("This reply is deterministic.")
        term.send("/new\n")
        await term.expect("Started a new conversation.")
        term.send("again\n")
        await term.expect("You said: again")
        term.send("/quit\n")
        assert await asyncio.wait_for(term.proc.wait(), 20) == 0
    finally:
        term.close()
    first, second = fake_dify.chat_requests()
    assert first.json["conversation_id"] == "" and second.json["conversation_id"] == ""
    assert "Traceback" not in term.buffer


async def test_ctrl_c_stops_the_answer_without_a_traceback(fake_dify, tmp_path):
    fake_dify.plan(Plan(answer=" ".join(f"w{i}" for i in range(200)), token_gap=0.05))
    term = await _terminal(fake_dify, tmp_path)
    try:
        await term.expect("> ")
        term.send("tell me a long story\n")
        await term.expect("w3 ")
        os.killpg(term.proc.pid, signal.SIGINT)
        await term.expect("(stopped)")
        await fake_dify.wait_for(lambda f: bool(f.stopped_tasks), timeout=10)
        term.send("/quit\n")
        assert await asyncio.wait_for(term.proc.wait(), 20) == 0
    finally:
        term.close()
    assert "Traceback" not in term.buffer and "w199" not in term.buffer
