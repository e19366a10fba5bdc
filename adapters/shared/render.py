"""Platform-neutral rendering helpers: splitting long Markdown, footers."""

from __future__ import annotations

import re
from collections.abc import Callable

_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")


def _blocks(text: str) -> list[tuple[str, bool]]:
    """Cut Markdown into (chunk, is_code) pieces: fenced code blocks whole, prose by paragraph."""
    pieces: list[tuple[str, bool]] = []
    lines = text.split("\n")
    i = 0
    prose: list[str] = []

    def flush_prose(tail: str = "") -> None:
        if prose:
            for para in re.split(r"(\n\s*\n)", "\n".join(prose) + tail):
                if para:
                    pieces.append((para, False))
            prose.clear()

    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match:
            flush_prose("\n")  # the line break before the fence line belongs to the text
            fence = match.group(2)
            block = [lines[i]]
            i += 1
            while i < len(lines):
                block.append(lines[i])
                stripped = lines[i].strip()
                i += 1
                if stripped.startswith(fence[0] * len(fence)) and stripped.strip(fence[0]) == "":
                    break
            pieces.append(("\n".join(block), True))
            if i < len(lines):
                pieces.append(("\n", False))
            continue
        prose.append(lines[i])
        i += 1
    flush_prose()
    return pieces


def _split_code(block: str, limit: int, size: Callable[[str], int]) -> list[str]:
    """Split one oversize fenced block into several fenced blocks (each closed and reopened)."""
    lines = block.split("\n")
    opener = lines[0]
    fence = _FENCE.match(opener).group(2)  # type: ignore[union-attr]
    body = lines[1:-1] if len(lines) > 1 and lines[-1].strip().startswith(fence) else lines[1:]
    overhead = size(opener) + size(fence) + 2
    out, current = [], []
    for line in body:
        while size(line) + overhead > limit:  # a single huge line: hard-cut it
            room = _fit(line, max(1, limit - overhead), size)
            if current:
                out.append("\n".join([opener, *current, fence]))
                current = []
            out.append("\n".join([opener, line[:room], fence]))
            line = line[room:]
        if current and size("\n".join(current + [line])) + overhead > limit:
            out.append("\n".join([opener, *current, fence]))
            current = []
        current.append(line)
    if current or not out:
        out.append("\n".join([opener, *current, fence]))
    return out


def _fit(text: str, limit: int, size: Callable[[str], int]) -> int:
    """The longest prefix length of `text` whose size is at most `limit`."""
    lo, hi = 0, min(len(text), limit)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if size(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return max(1, lo)


def _split_prose(text: str, limit: int, size: Callable[[str], int]) -> list[str]:
    out = []
    while size(text) > limit:
        room = _fit(text, limit, size)
        cut = text.rfind("\n", 0, room)
        if cut <= 0:
            cut = text.rfind(" ", 0, room)
        if cut <= 0:
            cut = room
        out.append(text[:cut])
        text = text[cut:].lstrip("\n ") if cut < len(text) else ""
    if text:
        out.append(text)
    return out


def split_markdown(text: str, limit: int, size: Callable[[str], int] = len) -> list[str]:
    """Split `text` into parts of at most `limit` (as measured by `size`).

    Parts end at paragraph or code-block boundaries; a code block is never cut open (an oversize
    block becomes several complete blocks). Only a single oversize paragraph is cut at a line
    break or space.
    """
    if size(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for chunk, is_code in _blocks(text):
        candidates = [chunk]
        if size(chunk) > limit:
            candidates = _split_code(chunk, limit, size) if is_code else _split_prose(chunk, limit, size)
        for piece in candidates:
            if current and size(current + piece) > limit:
                parts.append(current)
                current = ""
            if not current and not piece.strip():
                continue
            current += piece
    if current.strip():
        parts.append(current)
    return [p.strip("\n") for p in parts if p.strip()]


def close_open_fence(text: str) -> str:
    """Close a code fence left open by a half-written answer (for renderers that need it)."""
    open_fence = None
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if not match:
            continue
        fence = match.group(2)
        if open_fence is None:
            open_fence = fence
        elif line.strip().startswith(open_fence[0] * len(open_fence)) and line.strip().strip(open_fence[0]) == "":
            open_fence = None
    return text if open_fence is None else text + "\n" + open_fence


def with_footer(text: str, footer: str) -> str:
    text = text.rstrip()
    return f"{text}\n\n{footer}" if text else footer
