"""What every platform's ReplySink does the same way.

Intermediate text goes to the sink's `LatestWriter` (coalesced, paced); a notice becomes a prefix of
the answer; the ending — an answer, or a partial answer with a "stopped: reason" footer, or just the
reason — goes to the platform-specific `_finalize(text, footer)`.
"""

from __future__ import annotations

from bots import messages
from bots.types import FinalAnswer, Problem

from .pacing import LatestWriter


class PacedSink:
    _writer: LatestWriter
    _prefix: str = ""

    async def update(self, text: str) -> None:
        self._writer.push(text)

    async def notice(self, text: str) -> None:
        self._prefix = f"{text}\n\n"

    async def finish(self, answer: FinalAnswer) -> None:
        await self._finalize(answer.text, None)

    async def fail(self, problem: Problem) -> None:
        if problem.partial.strip():
            await self._finalize(problem.partial, messages.stopped_footer(problem.text))
        else:
            await self._finalize(problem.text, None)

    async def _finalize(self, body: str, footer: str | None) -> None:
        raise NotImplementedError
