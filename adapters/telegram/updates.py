"""Telegram updates → messages the bot may answer: filtering, commands, mentions, scopes (pure code).

Private chats: every message (one rolling conversation per chat, or per topic in a private chat
with topics). Groups: only messages that mention the bot (`@botname` or a text mention), `/ask …`,
the bot's commands (`/new`, `/help`, `/kb`, `/start`, plain or `@botname`), and replies to the
bot's messages. Scopes: `telegram:<chat_id>` (private), `telegram:<chat_id>:<root message_id>`
(a conversation started in a group), `telegram:<chat_id>:topic:<message_thread_id>` (forum topic).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from telegram import Message, MessageEntity, Update

from bots.types import Attachment

COMMANDS = frozenset({"ask", "new", "help", "start", "kb"})


@dataclass(frozen=True)
class Identity:
    """The bot itself (from getMe)."""

    id: int
    username: str


@dataclass(frozen=True)
class TgMessage:
    """A message the bot was asked to act on."""

    message: Message
    chat_id: int
    message_id: int
    user_id: int
    private: bool
    thread_id: int | None  # the forum topic the message is in (answers go there too)
    text: str  # without the bot's mention or the command word
    command: str | None  # "new", "help", "start", "kb" (never "ask": that is a question)
    reply_to_bot: int | None  # the bot's message this replies to (groups only)

    @property
    def dify_user(self) -> str:
        return f"telegram:{self.user_id}"

    @property
    def scope(self) -> str | None:
        """The conversation, or None when it is the one of the bot's answer being replied to."""
        if self.thread_id is not None:
            return topic_scope(self.chat_id, self.thread_id)
        if self.private:
            return f"telegram:{self.chat_id}"
        return None if self.reply_to_bot else root_scope(self.chat_id, self.message_id)

    @property
    def reply_to(self) -> int | None:
        """Answers in groups reply to the user's message."""
        return None if self.private else self.message_id

    @property
    def attachments(self) -> tuple[Attachment, ...]:
        m = self.message
        if m.document is not None:
            d = m.document
            return (Attachment(d.file_name or "document", d.mime_type, d.file_size, ref=d.file_id),)
        if m.photo:
            p = m.photo[-1]
            return (Attachment("photo.jpg", "image/jpeg", p.file_size, ref=p.file_id),)
        return ()


def topic_scope(chat_id: int, thread_id: int) -> str:
    return f"telegram:{chat_id}:topic:{thread_id}"


def root_scope(chat_id: int, message_id: int) -> str:
    return f"telegram:{chat_id}:{message_id}"


def _cut(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` without the UTF-16 ranges `spans` (offset, length)."""
    data = text.encode("utf-16-le", "surrogatepass")
    out, pos = [], 0
    for offset, length in sorted(spans):
        out.append(data[2 * pos:2 * offset])
        pos = max(pos, offset + length)
    out.append(data[2 * pos:])
    return b"".join(out).decode("utf-16-le", "surrogatepass")


def _is_reply_to(message: Message, me: Identity) -> int | None:
    target = message.reply_to_message
    if target is None or target.from_user is None or target.from_user.id != me.id:
        return None
    if target.forum_topic_created is not None:  # a topic message "replies" to the topic's first message
        return None
    return target.message_id


def classify(update: Update, me: Identity) -> TgMessage | None:
    """The message in `update` the bot must act on, or None when it must be ignored."""
    message = update.message
    if message is None or message.from_user is None or message.from_user.is_bot:
        return None
    chat = message.chat
    if chat.type not in ("private", "group", "supergroup"):
        return None
    private = chat.type == "private"
    text = message.text or message.caption or ""
    entities: tuple[MessageEntity, ...] = message.entities or message.caption_entities or ()
    cut: list[tuple[int, int]] = []
    command: str | None = None
    addressed = private
    first = entities[0] if entities else None
    if first is not None and first.type == MessageEntity.BOT_COMMAND and first.offset == 0:
        word = _cut(text, [(first.length, len(text) * 2)])[1:]
        name, _, target = word.partition("@")
        name = name.lower()
        if target and target.lower() != me.username.lower():
            return None  # a command for another bot
        if name in COMMANDS:
            command = None if name == "ask" else name
            addressed = True
            cut.append((0, first.length))
        elif target:
            command, addressed = "help", True  # an unknown command meant for us
        elif not private:
            return None  # someone else's command
    for entity in entities:
        if entity.type == MessageEntity.MENTION:
            handle = _cut(text, [(0, entity.offset), (entity.offset + entity.length, len(text) * 2)])
            if handle.lower() == f"@{me.username.lower()}":
                addressed = True
                cut.append((entity.offset, entity.length))
        elif entity.type == MessageEntity.TEXT_MENTION and entity.user is not None and entity.user.id == me.id:
            addressed = True
            cut.append((entity.offset, entity.length))
    reply_to_bot = None if private else _is_reply_to(message, me)
    addressed = addressed or reply_to_bot is not None
    if not addressed:
        return None
    body = re.sub(r"[ \t]{2,}", " ", _cut(text, cut)).strip() if cut else text.strip()
    thread_id = message.message_thread_id if message.is_topic_message else None
    msg = TgMessage(message=message, chat_id=chat.id, message_id=message.message_id,
                    user_id=message.from_user.id, private=private, thread_id=thread_id, text=body,
                    command=command, reply_to_bot=reply_to_bot)
    if command is None and not body and not msg.attachments:
        if private:
            return None  # a sticker, a location…: nothing to ask
        return replace(msg, command="help")  # "@bot" alone: say what it does
    return msg
