"""How the Bot API turns `text` + `parse_mode` / `entities` into a message's text.

Mirrors `Client::get_formatted_text` (tdlib/telegram-bot-api, 10.0) and tdlib's
`fix_formatted_text`: parse mode errors become "can't parse entities: …", explicit
entities are checked against the UTF-16 length of the text, control characters are
cleaned, and leading/trailing spaces and newlines are trimmed (so "hi " and "hi" are the
same text for "message is not modified"). Not done: automatic detection of url /
mention / hashtag entities, and `fix_entities`' splitting of overlapping entities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.fakes.fake_telegram_markdown import parse_markdown, parse_markdown_v2
from tests.fakes.fake_telegram_markup import MarkupError, parse_html
from tests.fakes.fake_telegram_models import ApiError

MAX_TEXT = 4096
_PARSERS = {"html": parse_html, "markdownv2": parse_markdown_v2, "markdown": parse_markdown}
# Types the Bot API silently drops from `entities` (Telegram re-detects them itself).
_DETECTED = {"mention", "hashtag", "cashtag", "bot_command", "url", "email", "phone_number", "bank_card_number"}
_PLAIN = {"bold", "italic", "underline", "strikethrough", "spoiler", "code", "blockquote", "expandable_blockquote"}
_REMOVED = {"\r", "\u0333", "\u033f", "\u030a", *map(chr, range(0x2028, 0x202F))}


@dataclass
class FormattedText:
    """A message text after the Bot API processed it."""

    text: str
    entities: list[dict]


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of entity offsets."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def bad_request(description: str) -> ApiError:
    """A 400 with the Bot API's "Bad Request: " prefix and lower-cased first letter."""
    if len(description) > 1 and not (description[1] == "_" or description[1].isupper()):
        description = description[0].lower() + description[1:]
    return ApiError(400, f"Bad Request: {description}")


def format_text(text: str, parse_mode: Any, entities: Any, *, allow_empty: bool) -> FormattedText:
    """Text + parse mode or entities → the stored text; raises ApiError like the Bot API."""
    if len(text.encode("utf-8", "surrogatepass")) > 1 << 15:
        raise bad_request("Text is too long")
    mode = str(parse_mode or "").lower()
    if text and mode and mode != "none":
        if mode not in _PARSERS:
            raise bad_request("Unsupported parse_mode")
        try:
            plain, parsed = _PARSERS[mode](text)
        except MarkupError as exc:
            raise bad_request(f"Can't parse entities: {exc}") from None
    else:
        plain, parsed = text, _entities_from_param(entities)
    return _fix(plain, parsed, allow_empty=allow_empty)


def _entities_from_param(value: Any) -> list[dict]:
    """The `entities` parameter (a JSON array); unparsable JSON is ignored like the Bot API does."""
    if not isinstance(value, list):
        return []
    result = []
    for item in value:
        try:
            entity = _entity_from_json(item)
        except ValueError as exc:
            raise bad_request(f"Can't parse MessageEntity: {exc}") from None
        if entity is not None:
            result.append(entity)
    return result


def _entity_from_json(item: Any) -> dict | None:
    if not isinstance(item, dict):
        raise ValueError("expected an Object")
    for name in ("offset", "length"):
        if name not in item:
            raise ValueError(f'Can\'t find field "{name}"')
        if not isinstance(item[name], int) or isinstance(item[name], bool):
            raise ValueError(f'Field "{name}" must be a valid Number')
    kind = item.get("type")
    if not isinstance(kind, str) or not kind:
        raise ValueError("Type is not specified" if kind == "" else 'Can\'t find field "type"')
    entity = {"type": kind, "offset": item["offset"], "length": item["length"]}
    required = {"text_link": "url", "text_mention": "user", "custom_emoji": "custom_emoji_id",
                "date_time": "unix_time"}
    if kind in _DETECTED:
        return None
    if kind in required:
        if required[kind] not in item:
            raise ValueError(f'Can\'t find field "{required[kind]}"')
        entity[required[kind]] = item[required[kind]]
    elif kind == "pre":
        if item.get("language"):
            entity["language"] = item["language"]
    elif kind not in _PLAIN:
        raise ValueError("Unsupported type specified")
    return entity


def _check_bounds(text: str, entities: list[dict]) -> None:
    """tdlib `clean_input_string_with_entities`' checks, with its error texts."""
    boundaries, pos_bytes = {0: 0}, 0
    u16 = 0
    for ch in text:
        u16 += 2 if ord(ch) > 0xFFFF else 1
        pos_bytes += len(ch.encode("utf-8", "surrogatepass"))
        boundaries[u16] = pos_bytes
    total = u16
    for e in entities:
        if e["offset"] <= total and e["offset"] not in boundaries:
            raise bad_request(f"Entity begins in a middle of a UTF-16 symbol at byte offset "
                              f"{boundaries[e['offset'] + 1]}")
        end = e["offset"] + e["length"]
        if e["offset"] <= total and end <= total and end not in boundaries:
            raise bad_request(f"Entity beginning at UTF-16 offset {e['offset']} ends in a middle of a "
                              f"UTF-16 symbol at byte offset {boundaries[end + 1]}")
    after = [e for e in entities if e["offset"] > total]
    if after:
        raise bad_request(f"Entity begins after the end of the text at UTF-16 offset {after[0]['offset']}")
    overflow = [e for e in entities if e["offset"] + e["length"] > total]
    if overflow:
        e = overflow[-1]
        raise bad_request(f"Entity beginning at UTF-16 offset {e['offset']} ends after the end of the text "
                          f"at UTF-16 offset {e['offset'] + e['length']}")


def _clean(text: str, entities: list[dict]) -> str:
    """Control characters → spaces; '\\r', U+2028–U+202E and a few combining marks removed."""
    old_to_new, out, old, new = {0: 0}, [], 0, 0
    for ch in text:
        width = 2 if ord(ch) > 0xFFFF else 1
        old += width
        if ch not in _REMOVED:
            out.append(" " if ord(ch) < 32 and ch != "\n" else ch)
            new += width
        old_to_new[old] = new
    for e in entities:
        start, end = old_to_new[e["offset"]], old_to_new[e["offset"] + e["length"]]
        e["offset"], e["length"] = start, end - start
    return "".join(out)


def _fix(text: str, entities: list[dict], *, allow_empty: bool) -> FormattedText:
    """tdlib `fix_formatted_text` (simplified): check, clean, trim."""
    for e in entities:
        if not 0 <= e["offset"] <= 1_000_000:
            raise bad_request(f"Receive an entity with incorrect offset {e['offset']}")
        if not 0 <= e["length"] <= 1_000_000:
            raise bad_request(f"Receive an entity with incorrect length {e['length']}")
    entities = sorted((e for e in entities if e["length"] > 0), key=lambda e: (e["offset"], -e["length"]))
    _check_bounds(text, entities)
    text = _clean(text, entities)
    stripped = text.rstrip(" \n")
    if not stripped:
        if allow_empty:
            return FormattedText("", [])
        raise bad_request("Text must be non-empty")
    end = utf16_len(stripped)
    kept = []
    for e in entities:
        if e["length"] > 0 and e["offset"] < end:
            e["length"] = min(e["length"], end - e["offset"])
            kept.append(e)
    first_entity = kept[0]["offset"] if kept else end
    lead = len(stripped) - len(stripped.lstrip(" \n"))
    lead = min(lead, first_entity)
    for e in kept:
        e["offset"] -= lead
    return FormattedText(stripped[lead:], kept)
