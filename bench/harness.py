"""The real `dify-bridge serve` as its own process, plus what we read about it from /proc.

`BridgeProcess` starts `python -m bots.cli serve` with an environment pointing every platform at
the bench's loopback fakes, waits for `/readyz`, and reports CPU seconds (utime + stime) and peak
RSS (VmHWM) of that process. Everything is bounded: start-up, readiness and shutdown have timeouts.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")

SLACK_BOT_TOKEN = "xoxb-bench-token"
SLACK_SIGNING_SECRET = "bench-signing-secret-0123456789"
TELEGRAM_TOKEN = "123456:BENCH-token"
TELEGRAM_SECRET = "bench-webhook-secret_0123456789"
DIFY_APP_KEY = "app-bench-key"
DIFY_DATASET_KEY = "dataset-bench-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ProcStats:
    cpu_seconds: float  # user + system
    rss_mb: float  # VmRSS now
    hwm_mb: float  # VmHWM: peak RSS since start (or since reset_peak)


def proc_stats(pid: int) -> ProcStats:
    """CPU and memory of a running process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15 of stat)
    rss = hwm = 0.0
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    return ProcStats(cpu, rss, hwm)


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (`echo 5 > /proc/<pid>/clear_refs`); False if not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def bridge_env(
    *,
    port: int,
    database_url: str,
    dify_url: str,
    slack_api_url: str | None = None,
    telegram_url: str | None = None,
    slack_limits: str | None = None,
    telegram_limits: str | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """Environment for the bridge: only what the bench sets (plus PATH/HOME), so no .env leaks in."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    env.update({
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
        "DIFY_API_URL": dify_url,
        "DIFY_API_KEY": DIFY_APP_KEY,
        "DATABASE_URL": database_url,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "SHUTDOWN_GRACE_SECONDS": "2",
    })
    if slack_api_url:
        env.update(SLACK_API_URL=slack_api_url, SLACK_BOT_TOKEN=SLACK_BOT_TOKEN,
                   SLACK_SIGNING_SECRET=SLACK_SIGNING_SECRET)
        if slack_limits:
            env["SLACK_LIMITS"] = slack_limits
    if telegram_url:
        env.update(TELEGRAM_API_URL=telegram_url, TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN,
                   TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/webhook",
                   TELEGRAM_WEBHOOK_SECRET=TELEGRAM_SECRET)
        if telegram_limits:
            env["TELEGRAM_LIMITS"] = telegram_limits
    env.update(extra or {})
    return env


class BridgeProcess:
    """`dify-bridge serve` in a child process, in its own temporary directory (database, cwd)."""

    def __init__(self, env: dict[str, str], *, args: tuple[str, ...] = ("serve",)) -> None:
        self.env = env
        self.args = args
        self.port = int(env["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None
        self.stderr = b""
        self.started_at = 0.0
        self.ready_after = 0.0
        self._stderr_task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, *, timeout: float = 30.0) -> None:
        self.started_at = time.monotonic()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bots.cli", *self.args,
            cwd=self.env.get("BENCH_CWD", str(REPO)), env=self.env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        self._stderr_task = asyncio.create_task(self._drain_stderr())
        await self._wait_ready(timeout)
        self.ready_after = time.monotonic() - self.started_at

    async def _drain_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(65536):
            self.stderr = (self.stderr + chunk)[-200_000:]

    async def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.returncode is not None:
                    raise RuntimeError(f"the bridge exited with {self.proc.returncode}:\n{self.log_tail()}")
                try:
                    async with http.get(f"{self.url}/readyz") as resp:
                        if resp.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.05)  # polling a child process for readiness (bounded by deadline)
        raise TimeoutError(f"the bridge was not ready within {timeout:.0f} s:\n{self.log_tail()}")

    def stats(self) -> ProcStats:
        return proc_stats(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.stderr.decode(errors="replace").splitlines()[-lines:])

    async def stop(self, *, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait (bounded), SIGKILL if needed. Returns the exit status."""
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._stderr_task is not None:
            try:
                await asyncio.wait_for(self._stderr_task, 2)
            except TimeoutError:
                self._stderr_task.cancel()
        return proc.returncode


def temp_database() -> tuple[tempfile.TemporaryDirectory[str], str]:
    """A temporary directory and a SQLite URL inside it."""
    tmp = tempfile.TemporaryDirectory(prefix="dify-bridge-bench-")
    return tmp, f"sqlite+aiosqlite:///{tmp.name}/bench.db"


class Profiler:
    """py-spy (if installed) sampling the bridge process into a collapsed-stacks file; for investigations."""

    def __init__(self, pid: int, out: Path, rate: int = 250) -> None:
        self.pid, self.out, self.rate = pid, out, rate
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        exe = Path(sys.executable).with_name("py-spy")
        if not exe.exists():
            raise RuntimeError("py-spy is not installed in this environment (pip install py-spy)")
        self.proc = await asyncio.create_subprocess_exec(
            str(exe), "record", "--pid", str(self.pid), "--format", "raw", "--rate", str(self.rate),
            "--nonblocking", "--output", str(self.out),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(self.proc.wait(), 20)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
