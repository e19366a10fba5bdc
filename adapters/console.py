"""`dify-bridge chat`: the terminal as a chat platform, on the same engine and storage.

One scope per OS user, so the conversation carries across runs. Interactive: `/new`, `/help`,
`/quit`; Ctrl-C stops the answer being written (and asks Dify to stop), a second Ctrl-C at the
prompt exits. Piped: every input line is one message; exit status 1 if any answer failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import signal
import sys
import threading
import time
from typing import Any, TextIO

from bots import messages
from bots.engine import Engine
from bots.types import FinalAnswer, Incoming, Problem

PLATFORM = "console"


class ConsoleSink:
    """Prints the answer as it grows; only the new suffix is written."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.location: dict[str, Any] = {"terminal": True}
        self.shown = ""
        self.problem: Problem | None = None
        self.answer: FinalAnswer | None = None

    async def start(self) -> None:
        return None

    async def update(self, text: str) -> None:
        if text.startswith(self.shown):
            self.out.write(text[len(self.shown):])
        else:  # moderation replaced the answer
            self.out.write("\n[answer replaced]\n" + text)
        self.out.flush()
        self.shown = text

    async def notice(self, text: str) -> None:
        self.out.write(text.strip("_") + "\n")
        self.out.flush()

    async def finish(self, answer: FinalAnswer) -> None:
        if answer.text != self.shown:
            await self.update(answer.text)
        self.answer = answer
        self.out.write("\n")
        self.out.flush()

    async def fail(self, problem: Problem) -> None:
        self.problem = problem
        if self.shown:
            self.out.write("\n")
        self.out.flush()


def console_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers)
        return "default"


class ConsoleChat:
    def __init__(self, engine: Engine, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
        self.engine = engine
        self.out, self.err = out, err
        self.user = console_user()
        self.scope = self.user

    def incoming(self, text: str) -> Incoming:
        return Incoming(
            platform=PLATFORM,
            scope=self.scope,
            user_id=self.user,
            dify_user=f"console:{self.user}",
            text=text,
            received_at=time.monotonic(),
        )

    async def command(self, line: str) -> bool:
        """Handle `/new`, `/help`; True if `line` was a command."""
        word = line.strip().split()[0].lower() if line.strip() else ""
        if word == "/new":
            had = await self.engine.new_conversation(PLATFORM, self.scope)
            self.out.write((messages.NEW_CONVERSATION if had else messages.NO_CONVERSATION) + "\n")
            return True
        if word == "/help":
            self.out.write(messages.help_text(PLATFORM).replace("*", "") + "\n  /quit exits.\n")
            return True
        return False

    async def ask(self, text: str) -> ConsoleSink:
        sink = ConsoleSink(self.out)
        await self.engine.handle(self.incoming(text), sink)
        if sink.problem is not None:
            self.err.write(f"error: {sink.problem.text}\n")
            self.err.flush()
        return sink

    async def run_piped(self, stdin: TextIO) -> int:
        status = 0
        lines = await asyncio.to_thread(stdin.read)
        for line in lines.splitlines():
            if not line.strip():
                continue
            if await self.command(line):
                continue
            sink = await self.ask(line)
            if sink.problem is not None:
                status = 1
        return status

    async def run_interactive(self, stdin: TextIO) -> int:
        loop = asyncio.get_running_loop()
        lines = _read_lines(stdin, loop)
        current: asyncio.Task[Any] | None = None
        quit_requested = asyncio.Event()

        def on_sigint() -> None:
            if current is not None and not current.done():
                current.cancel()  # stop this answer (the engine asks Dify to stop too)
            else:
                quit_requested.set()

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, on_sigint)
        self.out.write("Dify Bridge terminal chat. /new starts over, /help for help, /quit to exit.\n")
        try:
            while True:
                self.out.write("> ")
                self.out.flush()
                line = await _next_line(lines, quit_requested)
                if line is None or line.strip().lower() in ("/quit", "/exit"):
                    self.out.write("\n" if line is None else "")
                    break
                if not line.strip() or await self.command(line):
                    continue
                current = asyncio.ensure_future(self.ask(line.rstrip("\n")))
                try:
                    await current
                except asyncio.CancelledError:
                    if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                        raise
                    self.out.write("\n(stopped)\n")
                finally:
                    current = None
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)
        return 0


def _read_lines(stdin: TextIO, loop: asyncio.AbstractEventLoop) -> asyncio.Queue[str | None]:
    """Feed stdin lines into a queue from a daemon thread (never blocks the loop or the exit)."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def reader() -> None:
        for line in iter(stdin.readline, ""):
            loop.call_soon_threadsafe(queue.put_nowait, line)
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=reader, name="stdin-reader", daemon=True).start()
    return queue


async def _next_line(lines: asyncio.Queue[str | None], quit_requested: asyncio.Event) -> str | None:
    get = asyncio.ensure_future(lines.get())
    stop = asyncio.ensure_future(quit_requested.wait())
    done, pending = await asyncio.wait({get, stop}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    return get.result() if get in done else None
