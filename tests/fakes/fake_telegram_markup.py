"""Telegram's HTML parse mode, ported from tdlib, plus helpers shared with Markdown.

A byte-level port of `parse_html` in tdlib/td `td/telegram/MessageEntity.cpp`
(HEAD 2026-07-17), which is what the Bot API server runs for `parse_mode=HTML`. Error
texts and byte offsets are tdlib's; the Bot API prefixes them with
"Bad Request: can't parse entities: " (see `fake_telegram_text`). Simplified: link
checking (tdlib's `get_checked_link`) and `tg-time` formats. Parsers return
`(plain_text, entities)` with Bot API entity dicts (UTF-16 offsets).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class MarkupError(ValueError):
    """The text does not parse; the message is tdlib's."""


_SPACE = frozenset(b" \t\r\n\0\v")
_ALLOWED_TAGS = frozenset(
    "a b strong i em s strike del u ins tg-spoiler tg-emoji tg-time span pre code blockquote".split()
)
_SIMPLE_TAGS = {"i": "italic", "em": "italic", "b": "bold", "strong": "bold", "s": "strikethrough",
                "strike": "strikethrough", "del": "strikethrough", "u": "underline", "ins": "underline",
                "tg-spoiler": "spoiler", "span": "spoiler"}
_NAMED_ENTITIES = {b"lt": 0x3C, b"gt": 0x3E, b"amp": 0x26, b"quot": 0x22}
_USER_LINK = re.compile(r"tg://user\?id=(\d+)", re.IGNORECASE)
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")


class _Buf:
    """Input bytes with tdlib's C-string semantics: reading past the end gives 0."""

    def __init__(self, text: str) -> None:
        self.data = text.encode("utf-8", "surrogatepass")
        self.n = len(self.data)

    def __getitem__(self, i: int) -> int:
        return self.data[i] if i < self.n else 0


def _first_unit(c: int) -> bool:
    return (c & 0xC0) != 0x80


def _units(c: int) -> int:
    """UTF-16 units added by the UTF-8 sequence starting with byte `c`."""
    return (2 if c >= 0xF0 else 1) if _first_unit(c) else 0


def _is_alpha(c: int) -> bool:
    return ord("a") <= (c | 0x20) <= ord("z")


def _is_alnum(c: int) -> bool:
    return _is_alpha(c) or 0x30 <= c <= 0x39


def _lower(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").lower()


def _entity(kind: str, offset: int, length: int, **extra: object) -> dict:
    return {"type": kind, "offset": offset, "length": length, **extra}


def _link_entity(url: str, offset: int, length: int) -> dict | None:
    """`<a href>` / `[text](url)`: a user link becomes text_mention, a bad link is dropped."""
    url = url.strip()
    if m := _USER_LINK.fullmatch(url):
        user = {"id": int(m.group(1)), "is_bot": False, "first_name": "User"}
        return _entity("text_mention", offset, length, user=user)
    if m := _SCHEME.match(url):
        if m.group(1).lower() not in ("http", "https", "ftp", "tg", "ton", "tonsite"):
            return None
    elif "." not in url or " " in url:
        return None
    else:
        url = "http://" + url
    return _entity("text_link", offset, length, url=url)


def _finish(out: bytearray, entities: list[dict]) -> tuple[str, list[dict]]:
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return out.decode("utf-8", "replace"), entities


# --------------------------------------------------------------------------- HTML


def _decode_html_entity(buf: _Buf, pos: int) -> tuple[int, int]:
    """tdlib `decode_html_entity`: (code point or 0, position after the entity)."""
    end, res = pos + 1, 0
    if buf[pos + 1] == ord("#"):
        end += 1
        if buf[pos + 2] == ord("x"):
            end += 1
            while chr(buf[end]) in "0123456789abcdefABCDEF":
                res = res * 16 + int(chr(buf[end]), 16)
                end += 1
        else:
            while 0x30 <= buf[end] <= 0x39:
                res = res * 10 + buf[end] - 0x30
                end += 1
        if res == 0 or res >= 0x10FFFF or end - pos >= 10:
            return 0, pos
    else:
        while _is_alpha(buf[end]):
            end += 1
        res = _NAMED_ENTITIES.get(buf.data[pos + 1 : end], 0)
        if not res:
            return 0, pos
    if buf[end] == ord(";"):
        end += 1
    return res, end


@dataclass
class _Open:
    tag: str
    arg: str
    offset: int  # UTF-16 offset in the output
    out_pos: int  # byte position in the output


def _read_start_tag(buf: _Buf, begin: int) -> tuple[_Open, int]:
    """Parses `<tag attr=...>` starting at `begin`; returns the open tag and the index of '>'."""
    i = begin + 1
    while buf[i] not in _SPACE and buf[i] != ord(">"):
        i += 1
    if buf[i] == 0:
        raise MarkupError(f"Unclosed start tag at byte offset {begin}")
    tag = _lower(buf.data[begin + 1 : i])
    if tag not in _ALLOWED_TAGS:
        raise MarkupError(f'Unsupported start tag "{tag}" at byte offset {begin}')
    arg = ""
    while buf[i] != ord(">"):
        while buf[i] != 0 and buf[i] in _SPACE:
            i += 1
        if buf[i] == ord(">"):
            break
        name_begin = i
        while buf[i] not in _SPACE and buf[i] not in b"=>/\"'":
            i += 1
        name = buf.data[name_begin:i]
        if not name:
            raise MarkupError(f'Empty attribute name in the tag "{tag}" at byte offset {begin}')
        while buf[i] != 0 and buf[i] in _SPACE:
            i += 1
        if buf[i] != ord("="):
            if buf[i] == 0:
                raise MarkupError(f'Unclosed start tag "{tag}" at byte offset {begin}')
            if tag == "blockquote" and name == b"expandable":
                arg = "1"
            continue
        i += 1
        while buf[i] != 0 and buf[i] in _SPACE:
            i += 1
        if buf[i] == 0:
            raise MarkupError(f'Unclosed start tag "{tag}" at byte offset {begin}')
        value, i = _read_attribute_value(buf, i)
        if buf[i] == 0:
            raise MarkupError(f"Unclosed start tag at byte offset {begin}")
        arg = _tag_argument(tag, name, value, arg)
    if tag == "span" and arg != "spoiler":
        raise MarkupError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin}')
    return _Open(tag, arg, 0, 0), i


def _read_attribute_value(buf: _Buf, i: int) -> tuple[str, int]:
    if buf[i] not in b"'\"":
        token_begin = i
        while _is_alnum(buf[i]) or buf[i] in b".-":
            i += 1
        if buf[i] not in _SPACE and buf[i] != ord(">"):
            raise MarkupError(f"Unexpected end of name token at byte offset {token_begin}")
        return _lower(buf.data[token_begin:i]), i
    quote = buf[i]
    i += 1
    value = bytearray()
    while buf[i] != quote and buf[i] != 0:
        if buf[i] == ord("&"):
            code, after = _decode_html_entity(buf, i)
            if code:
                value += chr(code).encode("utf-8", "surrogatepass")
                i = after
                continue
        value.append(buf[i])
        i += 1
    if buf[i] == quote:
        i += 1
    return value.decode("utf-8", "replace"), i


def _tag_argument(tag: str, name: bytes, value: str, current: str) -> str:
    if tag == "a" and name == b"href":
        return value
    if tag == "code" and name == b"class" and value.startswith("language-"):
        return value[9:]
    if tag == "span" and name == b"class" and value.startswith("tg-"):
        return value[3:]
    if (tag, name) in (("tg-emoji", b"emoji-id"), ("tg-time", b"unix")):
        return value  # for tg-time the argument holds the unix time; `format` is not checked
    if tag == "blockquote" and name == b"expandable":
        return "1"
    return current


def _close_tag(top: _Open, length: int, out: bytearray, entities: list[dict]) -> None:
    """Adds the entity for a closed tag (tdlib's end-of-entity branch)."""
    tag, offset = top.tag, top.offset
    last = entities[-1] if entities else None
    same_span = last is not None and last["offset"] == offset and last["length"] == length
    if tag in _SIMPLE_TAGS:
        entities.append(_entity(_SIMPLE_TAGS[tag], offset, length))
    elif tag == "tg-emoji":
        if not top.arg.lstrip("-").isdigit() or int(top.arg) == 0:
            raise MarkupError("Invalid custom emoji identifier specified")
        entities.append(_entity("custom_emoji", offset, length, custom_emoji_id=top.arg))
    elif tag == "tg-time":
        if top.arg.isdigit() and int(top.arg) > 0:
            entities.append(_entity("date_time", offset, length, unix_time=int(top.arg)))
    elif tag == "a":
        url = top.arg or out[top.out_pos :].decode("utf-8", "replace")
        if (link := _link_entity(url, offset, length)) is not None:
            entities.append(link)
    elif tag == "pre":
        if same_span and last["type"] == "code" and last.get("_lang"):
            last.update(type="pre", language=last.pop("_lang"))
        else:
            entities.append(_entity("pre", offset, length))
    elif tag == "code":
        if same_span and last["type"] == "pre" and top.arg and "language" not in last:
            last["language"] = top.arg
        else:
            entities.append(_entity("code", offset, length, _lang=top.arg))
    elif tag == "blockquote":
        entities.append(_entity("expandable_blockquote" if top.arg else "blockquote", offset, length))


def parse_html(text: str) -> tuple[str, list[dict]]:
    """Telegram's HTML parse mode (tdlib `parse_html`)."""
    buf = _Buf(text)
    out, entities, stack = bytearray(), [], []
    u16, i, surrogates = 0, 0, False
    while i < buf.n:
        c = buf[i]
        if c == ord("&"):
            code, after = _decode_html_entity(buf, i)
            if code:
                surrogates |= 0xD800 <= code <= 0xDFFF
                out += chr(code).encode("utf-8", "surrogatepass")
                u16 += 2 if code > 0xFFFF else 1
                i = after
                continue
        if c != ord("<"):
            u16 += _units(c)
            out.append(c)
            i += 1
            continue
        begin = i
        if buf[i + 1] != ord("/"):
            opened, i = _read_start_tag(buf, begin)
            opened.offset, opened.out_pos = u16, len(out)
            stack.append(opened)
        else:
            if not stack:
                raise MarkupError(f"Unexpected end tag at byte offset {begin}")
            i += 2
            while buf[i] not in _SPACE and buf[i] != ord(">"):
                i += 1
            end_tag = _lower(buf.data[begin + 2 : i])
            while buf[i] in _SPACE and buf[i] != 0:
                i += 1
            if buf[i] != ord(">"):
                raise MarkupError(f"Unclosed end tag at byte offset {begin}")
            top = stack[-1]
            if end_tag and end_tag != top.tag:
                raise MarkupError(f'Unmatched end tag at byte offset {begin}, expected "</{top.tag}>", '
                                  f'found "</{end_tag}>"')
            if u16 > top.offset:
                _close_tag(top, u16 - top.offset, out, entities)
            stack.pop()
        i += 1
    if stack:
        raise MarkupError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    for entity in entities:
        entity.pop("_lang", None)
    if surrogates:
        try:
            out.decode("utf-8")
        except UnicodeDecodeError:
            raise MarkupError("Text contains invalid Unicode characters after decoding HTML entities, "
                              "check for unmatched surrogate code units") from None
    return _finish(out, entities)
