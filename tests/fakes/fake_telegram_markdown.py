"""Telegram's MarkdownV2 and legacy Markdown parse modes, ported from tdlib.

Byte-level ports of `parse_markdown_v2` and `parse_markdown` in tdlib/td
`td/telegram/MessageEntity.cpp` (HEAD 2026-07-17). Error texts and byte offsets are
tdlib's, e.g. "Character '.' is reserved and must be escaped with the preceding '\\'" and
"Can't find end of Bold entity at byte offset 0" (MarkdownV2) or
"Can't find end of the entity starting at byte offset 0" (legacy Markdown).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.fakes.fake_telegram_markup import (
    _SPACE,
    MarkupError,
    _Buf,
    _entity,
    _finish,
    _link_entity,
    _units,
)

# tdlib's names for entity types, used in its error messages.
_NAMES = {"bold": "Bold", "italic": "Italic", "underline": "Underline", "strikethrough": "Strikethrough",
          "spoiler": "Spoiler", "code": "Code", "pre": "Pre", "pre_code": "PreCode", "text_url": "TextUrl",
          "custom_emoji": "CustomEmoji", "blockquote": "BlockQuote"}
_SIMPLE_START = {ord("*"): "bold", ord("~"): "strikethrough", ord("["): "text_url"}
_EMOJI_URL = re.compile(r"tg://emoji\?id=(\d+)")
_TIME_URL = re.compile(r"tg://time\?unix=(\d+)(?:&format=(\w*))?")


def _reserved(ch: int) -> MarkupError:
    return MarkupError(f"Character '{chr(ch)}' is reserved and must be escaped with the preceding '\\'")


def _skip_pre_language(buf: _Buf, i: int) -> tuple[str, int]:
    """After a ``` opener: the language (if any) and the index after one skipped newline."""
    language, end = "", i
    while buf[end] not in _SPACE and buf[end] != ord("`"):
        end += 1
    if i != end and end < buf.n and buf[end] != ord("`"):
        language, i = buf.data[i:end].decode("utf-8", "replace"), end
    if buf[i] in b"\n\r" and buf[i]:
        i += 2 if buf[i + 1] in b"\n\r" and buf[i + 1] and buf[i] != buf[i + 1] else 1
    return language, i


def parse_markdown(text: str) -> tuple[str, list[dict]]:
    """Legacy Markdown (tdlib `parse_markdown`): no nesting; `_`, `*`, `` ` ``, `[` only."""
    buf = _Buf(text)
    out, entities, u16, i = bytearray(), [], 0, 0
    while i < buf.n:
        c = buf[i]
        if c == ord("\\") and buf[i + 1] and buf[i + 1] in b"_*`[":
            out.append(buf[i + 1])
            u16, i = u16 + 1, i + 2
            continue
        if c not in b"_*`[":
            out.append(c)
            u16, i = u16 + _units(c), i + 1
            continue
        begin, end_ch, is_pre, language = i, (ord("]") if c == ord("[") else c), False, ""
        i += 1
        if c == ord("`") and buf[i] == ord("`") and buf[i + 1] == ord("`"):
            is_pre = True
            language, i = _skip_pre_language(buf, i + 2)
        offset = u16
        while i < buf.n and (buf[i] != end_ch or (is_pre and not buf[i + 1] == buf[i + 2] == ord("`"))):
            out.append(buf[i])
            u16, i = u16 + _units(buf[i]), i + 1
        if i == buf.n:
            raise MarkupError(f"Can't find end of the entity starting at byte offset {begin}")
        if offset != u16:
            length = u16 - offset
            if c == ord("["):
                if buf[i + 1] != ord("("):
                    url = buf.data[begin + 1 : i].decode("utf-8", "replace")
                else:
                    i += 2
                    url_begin = i
                    while i < buf.n and buf[i] != ord(")"):
                        i += 1
                    url = buf.data[url_begin:i].decode("utf-8", "replace")
                if (link := _link_entity(url, offset, length)) is not None:
                    entities.append(link)
            elif c == ord("`"):
                extra = {"language": language} if is_pre and language else {}
                entities.append(_entity("pre" if is_pre else "code", offset, length, **extra))
            else:
                entities.append(_entity("italic" if c == ord("_") else "bold", offset, length))
        if is_pre:
            i += 2
        i += 1
    return _finish(out, entities)


@dataclass
class _Open:
    kind: str
    arg: str
    offset: int  # UTF-16 offset in the output
    byte_offset: int  # in the input, for error messages
    out_pos: int  # byte position in the output


class _V2:
    """State of one MarkdownV2 parse; `run` mirrors tdlib's loop body by body."""

    def __init__(self, text: str) -> None:
        self.buf = _Buf(text)
        self.out = bytearray()
        self.entities: list[dict] = []
        self.stack: list[_Open] = []
        self.u16 = 0
        self.have_quote = False
        self.can_start_quote = True

    def run(self) -> tuple[str, list[dict]]:
        buf, i = self.buf, 0
        while i < buf.n:
            c = buf[i]
            if c == ord("\\") and 0 < buf[i + 1] <= 126:
                i += 1
                self.u16 += 1
                self.out.append(buf[i])
                if buf[i] != ord("\r"):
                    self.can_start_quote = buf[i] == ord("\n")
                i += 1
                continue
            in_code = self.stack and self.stack[-1].kind in ("code", "pre", "pre_code")
            if c not in (b"`" if in_code else b"_*[]()~`>#+-=|{}.!\n"):
                if c & 0xC0 != 0x80:
                    self.u16 += _units(c)
                    if c != ord("\r"):
                        self.can_start_quote = False
                self.out.append(c)
                i += 1
                continue
            i = self._end(i, c) if self._is_end(i, c) else self._start(i, c)
            i += 1
        return self._close_all()

    def _is_end(self, i: int, c: int) -> bool:
        if not self.stack:
            return False
        nxt = self.buf[i + 1]
        if self.have_quote and c == ord("\n") and (i + 1 == self.buf.n or nxt != ord(">")):
            return True
        kind = self.stack[-1].kind
        return {
            "bold": c == ord("*"), "italic": c == ord("_") and nxt != ord("_"), "code": c == ord("`"),
            "pre": c == ord("`") and nxt == self.buf[i + 2] == ord("`"),
            "pre_code": c == ord("`") and nxt == self.buf[i + 2] == ord("`"),
            "text_url": c == ord("]"), "underline": c == nxt == ord("_"), "strikethrough": c == ord("~"),
            "spoiler": c == nxt == ord("|"), "custom_emoji": c == ord("]"), "blockquote": False,
        }[kind]

    def _start(self, i: int, c: int) -> int:
        buf, begin, arg, nxt = self.buf, i, "", self.buf[i + 1]
        if c == ord("_"):
            kind = "underline" if nxt == ord("_") else "italic"
            i += kind == "underline"
        elif c in _SIMPLE_START:
            kind = _SIMPLE_START[c]
        elif c == ord("|") and nxt == ord("|"):
            kind, i = "spoiler", i + 1
        elif c == ord("!") and nxt == ord("["):
            kind, i = "custom_emoji", i + 1
        elif c == ord("`") and nxt == buf[i + 2] == ord("`"):
            arg, i = _skip_pre_language(buf, i + 3)
            kind, i = ("pre_code" if arg else "pre"), i - 1
        elif c == ord("`"):
            kind = "code"
        elif c == ord("\n"):
            self.u16 += 1
            self.out.append(c)
            self.can_start_quote = True
            return i
        elif c == ord(">") and self.can_start_quote:
            if self.have_quote:
                return i
            kind, self.have_quote = "blockquote", True
        else:
            raise _reserved(c)
        self.stack.append(_Open(kind, arg, self.u16, begin, len(self.out)))
        return i

    def _end(self, i: int, c: int) -> int:
        buf, kind = self.buf, self.stack[-1].kind
        if c == ord("\n") and kind != "blockquote":
            top = self.stack[-1]
            right_after = top.byte_offset == i - 2 or (
                top.byte_offset == i - 3 and self.out and self.out[-1] == ord("\r"))
            if kind != "spoiler" or not right_after:
                raise self._unclosed(top)
            self.stack.pop()
            if self.stack[-1].kind != "blockquote":
                raise self._unclosed(self.stack[-1])
            kind = "expandable_blockquote"
        top = self.stack[-1]
        skip, extra = self.u16 == top.offset, {}
        if kind in ("underline", "spoiler"):
            i += 1
        elif kind in ("pre", "pre_code"):
            i += 2
            extra = {"language": top.arg} if top.arg else {}
        elif kind in ("text_url", "custom_emoji"):
            if buf[i + 1] != ord("("):
                if kind == "custom_emoji":
                    raise MarkupError("The entity must contain a tg://emoji or tg://time URL")
                url = self.out[top.out_pos :].decode("utf-8", "replace")
            else:
                url, i = self._read_url(i + 2)
            link = self._url_entity(kind, url, top.offset, self.u16 - top.offset)
            skip = skip or link is None
        elif kind in ("blockquote", "expandable_blockquote"):
            self.have_quote, self.can_start_quote, skip = False, True, False
            self.out.append(buf[i])
            self.u16 += 1
        if not skip:
            if kind in ("text_url", "custom_emoji"):
                self.entities.append(link)
            else:
                self.entities.append(_entity(kind.replace("pre_code", "pre"), top.offset,
                                             self.u16 - top.offset, **extra))
        self.stack.pop()
        return i

    def _read_url(self, i: int) -> tuple[str, int]:
        buf, url, begin = self.buf, bytearray(), i
        while i < buf.n and buf[i] != ord(")"):
            if buf[i] == ord("\\") and 0 < buf[i + 1] <= 126:
                url.append(buf[i + 1])
                i += 2
                continue
            url.append(buf[i])
            i += 1
        if buf[i] != ord(")"):
            raise MarkupError(f"Can't find end of a URL at byte offset {begin}")
        return url.decode("utf-8", "replace"), i

    @staticmethod
    def _url_entity(kind: str, url: str, offset: int, length: int) -> dict | None:
        if kind == "text_url":
            return _link_entity(url, offset, length)
        if m := _EMOJI_URL.fullmatch(url):
            return _entity("custom_emoji", offset, length, custom_emoji_id=m.group(1))
        if m := _TIME_URL.fullmatch(url):
            return _entity("date_time", offset, length, unix_time=int(m.group(1)))
        raise MarkupError("Invalid tg://emoji or tg://time URL specified")

    @staticmethod
    def _unclosed(top: _Open) -> MarkupError:
        return MarkupError(f"Can't find end of {_NAMES[top.kind]} entity at byte offset {top.byte_offset}")

    def _close_all(self) -> tuple[str, list[dict]]:
        if self.have_quote:
            kind = "blockquote"
            top = self.stack[-1]
            if top.kind == "spoiler" and top.byte_offset == self.buf.n - 2:
                self.stack.pop()
                kind = "expandable_blockquote"
            if self.stack[-1].kind == "blockquote":
                top = self.stack.pop()
                if self.u16 != top.offset:
                    self.entities.append(_entity(kind, top.offset, self.u16 - top.offset))
        if self.stack:
            raise self._unclosed(self.stack[-1])
        return _finish(self.out, self.entities)


def parse_markdown_v2(text: str) -> tuple[str, list[dict]]:
    """MarkdownV2 (tdlib `parse_markdown_v2`): nesting, escapes, block quotes."""
    return _V2(text).run()
