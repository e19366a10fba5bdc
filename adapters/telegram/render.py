"""Dify Markdown → Telegram `text` + `entities`, split into messages of at most 4,096 UTF-16 units.

telegramify-markdown parses the Markdown (pulldown-cmark) and returns plain text with entities, so
nothing is sent with `parse_mode` and half-written Markdown (an open `**`, an unclosed fence) can't
make Telegram answer "can't parse entities". Long answers are split on the converted text: at a
paragraph or code-block boundary, else a line break, else a space; never inside a code block unless
that block alone is longer than a message (then at a line break inside it, each piece a complete
`pre` entity). Entities that span a cut are clipped into both messages; no text is lost.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass
from typing import Any

import telegramify_markdown
from telegram import MessageEntity

log = logging.getLogger("adapters.telegram.render")

MAX_UNITS = 4096  # Telegram's message text limit, counted here in UTF-16 code units (the stricter count)
_CODE = frozenset({"pre", "code"})
_BLANK = " \n"


@dataclass(frozen=True, slots=True)
class Part:
    """One message's worth of text; `entities` are Bot API MessageEntity dicts (UTF-16 offsets)."""

    text: str
    entities: tuple[dict[str, Any], ...] = ()

    def ptb_entities(self) -> list[MessageEntity] | None:
        return [MessageEntity.de_json(dict(e), None) for e in self.entities] or None  # type: ignore[misc]

    def plain(self) -> Part:
        return Part(self.text)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's limits and entity offsets."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le", "surrogatepass")) // 2


def convert(markdown: str) -> tuple[str, list[dict[str, Any]]]:
    """Markdown → (text, entity dicts). Never raises: on a converter bug the Markdown goes as plain text."""
    try:
        text, entities = telegramify_markdown.convert(markdown)
    except Exception:  # noqa: BLE001 - the answer must still reach the user
        log.exception("telegramify-markdown failed; sending the answer as plain text")
        return markdown, []
    return text, [e.to_dict() for e in entities]


def render_parts(markdown: str, limit: int = MAX_UNITS) -> list[Part]:
    """The messages that show `markdown` (an empty list for blank text)."""
    text, entities = convert(markdown)
    return split_text(text, entities, limit)


def append_line(part: Part, markdown: str, limit: int = MAX_UNITS) -> list[Part]:
    """`part` followed by a blank line and `markdown` (a footer): one message, or two when it won't fit."""
    extra = render_parts(markdown, limit)
    if not part.text:
        return extra
    if len(extra) != 1 or utf16_len(part.text) + 2 + utf16_len(extra[0].text) > limit:
        return [part, *extra]
    shift = utf16_len(part.text) + 2
    moved = tuple({**e, "offset": e["offset"] + shift} for e in extra[0].entities)
    return [Part(f"{part.text}\n\n{extra[0].text}", part.entities + moved)]


class _Text:
    """The converted text with a UTF-16 offset table, code ranges and candidate cut points."""

    def __init__(self, text: str, entities: list[dict[str, Any]]) -> None:
        self.text = text
        self.units = [0] * (len(text) + 1)
        total = 0
        for i, ch in enumerate(text):
            self.units[i] = total
            total += 2 if ord(ch) > 0xFFFF else 1
        self.units[len(text)] = total
        index = {u: i for i, u in enumerate(self.units)}
        self.code = sorted(
            (index.get(e["offset"], 0), index.get(e["offset"] + e["length"], len(text)))
            for e in entities if e.get("type") in _CODE)
        self.lines = [i + 1 for i, ch in enumerate(text) if ch == "\n"]
        self.paragraphs = sorted({i for i in self.lines if i >= 2 and text[i - 2] == "\n"}
                                 | {edge for span in self.code for edge in span})

    def code_around(self, pos: int) -> tuple[int, int] | None:
        """The code range `pos` lies strictly inside, if any."""
        for start, end in self.code:
            if start < pos < end:
                return start, end
            if start >= pos:
                break
        return None

    def last_cut(self, points: list[int], lo: int, hi: int, inside: tuple[int, int] | None = None) -> int | None:
        """The last point in (lo, hi] outside code (or inside the given code range only)."""
        i = bisect.bisect_right(points, hi) - 1
        while i >= 0 and points[i] > lo:
            around = self.code_around(points[i])
            if around == inside:
                return points[i]
            i -= 1
        return None

    def cut(self, start: int, limit: int) -> int:
        """Where the message starting at `start` ends."""
        hi = bisect.bisect_right(self.units, self.units[start] + limit) - 1
        if hi >= len(self.text):
            return len(self.text)
        big = self.code_around(hi)  # a cut here would land inside this code block
        if big is not None and big[0] <= start:  # the block began before this message: it is oversize
            found = self.last_cut(self.lines, start, hi, inside=big)
            return found if found is not None else hi
        for points in (self.paragraphs, self.lines):
            found = self.last_cut(points, start, hi)
            if found is not None:
                return found
        if big is not None:  # no boundary before the block: the block itself must be cut
            found = self.last_cut(self.lines, start, hi, inside=big)
            return found if found is not None else hi
        space = self.text.rfind(" ", start + 1, hi)
        return space + 1 if space > start else hi

    def part(self, start: int, end: int, entities: list[dict[str, Any]]) -> Part | None:
        """text[start:end] without surrounding blanks, with its entities clipped and shifted."""
        covered = [span for span in self.code if span[0] < end and span[1] > start]
        while start < end and self.text[start] in _BLANK and not any(s <= start < e for s, e in covered):
            start += 1
        while end > start and self.text[end - 1] in _BLANK:
            end -= 1
        if start >= end:
            return None
        lo, hi = self.units[start], self.units[end]
        clipped = []
        for e in entities:
            s, t = max(e["offset"], lo), min(e["offset"] + e["length"], hi)
            if t > s:
                clipped.append({**e, "offset": s - lo, "length": t - s})
        return Part(self.text[start:end], tuple(clipped))


def split_text(text: str, entities: list[dict[str, Any]], limit: int = MAX_UNITS) -> list[Part]:
    """Split converted text + entities into parts of at most `limit` UTF-16 units (see module doc)."""
    doc = _Text(text, entities)
    parts: list[Part] = []
    start = 0
    while start < len(text):
        end = doc.cut(start, limit)
        if end <= start:
            end = start + 1
        part = doc.part(start, end, entities)
        if part is not None:
            parts.append(part)
        start = end
    return parts
