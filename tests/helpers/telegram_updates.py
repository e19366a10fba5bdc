"""Factories for Telegram Update dicts, shaped like the Bot API sends them.

Every update gets a unique, increasing `update_id`; user messages get increasing
`message_id`s starting at 5001, well clear of the ids the fake Bot API gives the bot's own
messages (1, 2, … per chat). Entity offsets are in UTF-16 code units, as Telegram counts.

    text, entities = mention("what is RAG?", "dify_test_bot")
    fake.push_update(group_message(text, entities=entities))
"""

from __future__ import annotations

import itertools
import time
from typing import Any

_update_ids = itertools.count(700_000_001)
_message_ids = itertools.count(5_001)

GROUP_TITLE = "Test group"


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units (the unit of entity offsets)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _user(user_id: int, first_name: str) -> dict:
    return {"id": user_id, "is_bot": False, "first_name": first_name, "username": f"{first_name.lower()}_{user_id}",
            "language_code": "en"}


def _message(chat: dict, sender: dict, text: str | None, *, message_id: int | None, entities: list | None,
              document: dict | None, caption: str | None, reply_to: dict | None) -> dict:
    message: dict[str, Any] = {"message_id": message_id or next(_message_ids), "from": sender, "chat": chat,
                               "date": int(time.time())}
    if document is not None:
        message["document"] = document
        caption = caption if caption is not None else (text or None)
        if caption:
            message["caption"] = caption
            if entities:
                message["caption_entities"] = entities
    else:
        message["text"] = text
        if entities:
            message["entities"] = entities
    if reply_to is not None:
        message["reply_to_message"] = reply_to
    return message


def private_message(text: str, *, user_id: int = 1001, first_name: str = "Ann", message_id: int | None = None,
                    entities: list | None = None, document: dict | None = None, caption: str | None = None,
                    reply_to: dict | None = None) -> dict:
    """A user's message in their private chat with the bot (chat id == user id).

    With `document`, the message carries the file and `caption` (or `text`, if no caption)
    instead of a text; `entities` then become caption_entities."""
    chat = {"id": user_id, "type": "private", "first_name": first_name,
            "username": f"{first_name.lower()}_{user_id}"}
    message = _message(chat, _user(user_id, first_name), text, message_id=message_id, entities=entities,
                       document=document, caption=caption, reply_to=reply_to)
    return {"update_id": next(_update_ids), "message": message}


def group_message(text: str, *, chat_id: int = -100200, user_id: int = 1001, first_name: str = "Ann",
                  message_id: int | None = None, entities: list | None = None, reply_to: dict | None = None,
                  message_thread_id: int | None = None, is_topic_message: bool = False,
                  document: dict | None = None, caption: str | None = None) -> dict:
    """A user's message in a supergroup; in a forum topic with `message_thread_id` +
    `is_topic_message=True`. Like Telegram, a topic message that replies to nothing else
    replies to the topic's creation message (`forum_topic_created`)."""
    chat: dict[str, Any] = {"id": chat_id, "type": "supergroup", "title": GROUP_TITLE}
    if is_topic_message:
        chat["is_forum"] = True
    sender = _user(user_id, first_name)
    if is_topic_message and message_thread_id and reply_to is None:
        reply_to = {"message_id": message_thread_id, "from": sender, "chat": chat, "date": int(time.time()),
                    "message_thread_id": message_thread_id, "is_topic_message": True,
                    "forum_topic_created": {"name": "Topic", "icon_color": 7322096}}
    message = _message(chat, sender, text, message_id=message_id, entities=entities, document=document,
                       caption=caption, reply_to=reply_to)
    if message_thread_id is not None:
        message["message_thread_id"] = message_thread_id
    if is_topic_message:
        message["is_topic_message"] = True
    return {"update_id": next(_update_ids), "message": message}


def mention(text_before: str, username: str, text_after: str = "") -> tuple[str, list[dict]]:
    """Text that mentions @username after `text_before` (and before `text_after`), with its
    `mention` entity. mention("hi", "bot") → ("hi @bot", [mention at 3, length 4])."""
    prefix = text_before + (" " if text_before and not text_before[-1].isspace() else "")
    handle = "@" + username.lstrip("@")
    suffix = (" " + text_after) if text_after and not text_after[0].isspace() else text_after
    entity = {"type": "mention", "offset": utf16_len(prefix), "length": utf16_len(handle)}
    return prefix + handle + suffix, [entity]


def command(text: str) -> tuple[str, list[dict]]:
    """A bot command message ("/kb status", "/new@dify_test_bot") with its bot_command entity."""
    if not text.startswith("/"):
        raise ValueError("a command starts with '/'")
    word = text.split(maxsplit=1)[0]
    return text, [{"type": "bot_command", "offset": 0, "length": utf16_len(word)}]


def document(file_id: str, *, file_name: str = "notes.txt", mime_type: str = "text/plain",
             file_size: int = 10) -> dict:
    """A Document object, e.g. for a file the fake serves (`FakeTelegram.add_file`)."""
    return {"file_id": file_id, "file_unique_id": "AgAD" + file_id[-8:], "file_name": file_name,
            "mime_type": mime_type, "file_size": file_size}


def bot_message(chat_id: int, message_id: int, text: str, bot_id: int = 123456,
                username: str = "dify_test_bot") -> dict:
    """A message sent by the bot, to use as `reply_to` when a user replies to the bot."""
    chat: dict[str, Any] = ({"id": chat_id, "type": "private", "first_name": "Ann"} if chat_id > 0
                            else {"id": chat_id, "type": "supergroup", "title": GROUP_TITLE})
    sender = {"id": bot_id, "is_bot": True, "first_name": "Dify Test Bot", "username": username}
    return {"message_id": message_id, "from": sender, "chat": chat, "date": int(time.time()), "text": text}
