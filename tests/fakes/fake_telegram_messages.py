"""Bot API methods about the bot, chats, messages, drafts, commands and files.

Error texts follow tdlib/telegram-bot-api 10.0 (`Client.cpp`) and tdlib where they come
from the Bot API server; "TEXTDRAFT_PEER_INVALID" (drafts outside private chats) is what
real bots report from Telegram's servers; "draft_id must be non-zero" and the draft length
error are our guesses. The fake is lenient where Telegram needs knowledge it lacks: any
integer chat id exists, and a reply target need not be known.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.fakes.fake_telegram_flood import FloodControl
from tests.fakes.fake_telegram_models import ApiError, SentMessage, StoredFile
from tests.fakes.fake_telegram_text import MAX_TEXT, FormattedText, bad_request, format_text

MAX_DOWNLOAD = 20 << 20  # tdlib's MAX_DOWNLOAD_FILE_SIZE for the cloud Bot API
CHAT_ACTIONS = frozenset({
    "cancel", "typing", "record_video", "upload_video", "record_audio", "record_voice", "upload_audio",
    "upload_voice", "upload_photo", "upload_document", "choose_sticker", "pick_up_location", "find_location",
    "record_video_note", "upload_video_note",
})
NOT_MODIFIED = ("Bad Request: message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message")


def retry_after_error(seconds: int) -> ApiError:
    """The 429 answer PTB turns into telegram.error.RetryAfter."""
    return ApiError(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})


class MessagingMethods:
    """Mixin of FakeTelegram: handlers take decoded params and uploaded files, return `result`."""

    token: str
    bot_id: int
    username: str
    draft_mode: bool | str
    flood: FloodControl
    chats: dict[int, list[SentMessage]]
    drafts: dict[int, list[dict]]
    chat_actions: list[dict]
    commands: list[dict]
    _chat_info: dict[int, dict]
    _seen: dict[tuple[int, int], dict]
    _last_ids: dict[int, int]
    _files: dict[str, StoredFile]
    _my_commands: dict[str, list[dict]]

    MESSAGING_METHODS = {
        "getMe": "api_get_me", "getChat": "api_get_chat", "sendMessage": "api_send_message",
        "editMessageText": "api_edit_message_text", "deleteMessage": "api_delete_message",
        "sendMessageDraft": "api_send_message_draft", "sendChatAction": "api_send_chat_action",
        "setMyCommands": "api_set_my_commands", "deleteMyCommands": "api_delete_my_commands",
        "getMyCommands": "api_get_my_commands", "getFile": "api_get_file",
        "answerCallbackQuery": "api_true", "setMessageReaction": "api_true",
    }

    # ------------------------------------------------------------------ objects

    def bot_user(self, *, full: bool = False) -> dict:
        """The bot as a User object (getMe adds the bot-only fields)."""
        user = {"id": self.bot_id, "is_bot": True, "first_name": "Dify Test Bot", "username": self.username}
        if full:
            user.update(can_join_groups=True, can_read_all_group_messages=False, supports_inline_queries=False,
                        can_connect_to_business=False, has_main_web_app=False)
        return user

    def chat_json(self, chat_id: int) -> dict:
        """A Chat object: what pushed updates said about it, else a private chat or a supergroup."""
        if chat_id in self._chat_info:
            return dict(self._chat_info[chat_id])
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "User"}
        return {"id": chat_id, "type": "supergroup", "title": "Group"}

    def message_json(self, msg: SentMessage, *, nested: bool = True) -> dict:
        """A sent message as the Message object the Bot API returns."""
        data: dict[str, Any] = {"message_id": msg.message_id, "from": self.bot_user(),
                                "chat": self.chat_json(msg.chat_id), "date": msg.date, "text": msg.text}
        if msg.entities:
            data["entities"] = [dict(e) for e in msg.entities]
        if msg.message_thread_id:
            data["message_thread_id"] = msg.message_thread_id
            if msg.chat_id < 0:
                data["is_topic_message"] = True
        if nested and msg.reply_to_message_id:
            target = self._find_message(msg.chat_id, msg.reply_to_message_id)
            if target is not None:
                data["reply_to_message"] = self.message_json(target, nested=False)
            elif (msg.chat_id, msg.reply_to_message_id) in self._seen:
                data["reply_to_message"] = self._seen[(msg.chat_id, msg.reply_to_message_id)]
        if msg.edit_date:
            data["edit_date"] = msg.edit_date
        if msg.reply_markup:
            data["reply_markup"] = msg.reply_markup
        return data

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _chat_id(p: dict) -> int:
        value = p.get("chat_id")
        if value is None or value == "":
            raise bad_request("chat_id is empty")
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad_request("chat not found")
        return value

    def _next_message_id(self, chat_id: int) -> int:
        self._last_ids[chat_id] = self._last_ids.get(chat_id, 0) + 1
        return self._last_ids[chat_id]

    def _find_message(self, chat_id: int, message_id: Any) -> SentMessage | None:
        for msg in self.chats.get(chat_id, []):
            if msg.message_id == message_id and not msg.deleted:
                return msg
        return None

    @staticmethod
    def _reply_to(p: dict) -> int | None:
        params = p.get("reply_parameters")
        if isinstance(params, dict) and isinstance(params.get("message_id"), int):
            return params["message_id"]
        value = p.get("reply_to_message_id")
        return value if isinstance(value, int) and value else None

    @staticmethod
    def _version(ft: FormattedText, parse_mode: Any) -> dict:
        return {"text": ft.text, "entities": ft.entities, "parse_mode": parse_mode, "time": time.monotonic()}

    @staticmethod
    def _spend(retry_after: int | None) -> None:
        if retry_after is not None:
            raise retry_after_error(retry_after)

    def _message_text(self, p: dict, *, too_long: str) -> FormattedText:
        text = p.get("text")
        if not text:
            raise bad_request("Message text is empty")
        ft = format_text(str(text), p.get("parse_mode"), p.get("entities"), allow_empty=False)
        if len(ft.text) > MAX_TEXT:
            raise ApiError(400, too_long)
        return ft

    # ------------------------------------------------------------------ methods

    async def api_true(self, p: dict, files: dict) -> bool:
        """Methods the fake accepts without keeping state."""
        return True

    async def api_get_me(self, p: dict, files: dict) -> dict:
        return self.bot_user(full=True)

    async def api_get_chat(self, p: dict, files: dict) -> dict:
        chat = self.chat_json(self._chat_id(p))
        return {**chat, "accent_color_id": 0, "max_reaction_count": 11, "accepted_gift_types": {
            "unlimited_gifts": False, "limited_gifts": False, "unique_gifts": False,
            "premium_subscription": False, "gifts_from_channels": False}}

    async def api_send_message(self, p: dict, files: dict) -> dict:
        chat_id = self._chat_id(p)
        ft = self._message_text(p, too_long="Bad Request: message is too long")
        self._spend(self.flood.message(chat_id))
        msg = SentMessage(
            chat_id=chat_id, message_id=self._next_message_id(chat_id), text=ft.text, entities=ft.entities,
            parse_mode=p.get("parse_mode"), message_thread_id=p.get("message_thread_id") or None,
            reply_to_message_id=self._reply_to(p), date=int(time.time()), reply_markup=p.get("reply_markup"))
        msg.history.append(self._version(ft, msg.parse_mode))
        self.chats.setdefault(chat_id, []).append(msg)
        return self.message_json(msg)

    async def api_edit_message_text(self, p: dict, files: dict) -> dict:
        ft = self._message_text(p, too_long="Bad Request: MESSAGE_TOO_LONG")
        if p.get("chat_id") in (None, "") and not p.get("message_id"):
            if p.get("inline_message_id"):
                raise ApiError(400, "Bad Request: MESSAGE_ID_INVALID")  # inline messages: not simulated
            raise bad_request("Message identifier is not specified")
        chat_id = self._chat_id(p)
        msg = self._find_message(chat_id, p.get("message_id"))
        if msg is None:
            if (chat_id, p.get("message_id")) in self._seen:
                raise bad_request("Message can't be edited")
            raise bad_request("Message to edit not found")
        markup = p.get("reply_markup")
        if (ft.text, ft.entities, markup) == (msg.text, msg.entities, msg.reply_markup):
            raise ApiError(400, NOT_MODIFIED)
        self._spend(self.flood.message(chat_id))
        msg.text, msg.entities, msg.reply_markup = ft.text, ft.entities, markup
        msg.parse_mode, msg.edit_date = p.get("parse_mode"), int(time.time())
        msg.edits.append(ft.text)
        msg.history.append(self._version(ft, msg.parse_mode))
        return self.message_json(msg)

    async def api_delete_message(self, p: dict, files: dict) -> bool:
        if p.get("chat_id") in (None, ""):
            raise bad_request("Chat identifier is not specified")
        if not p.get("message_id"):
            raise bad_request("Message identifier is not specified")
        chat_id, message_id = self._chat_id(p), p["message_id"]
        msg = self._find_message(chat_id, message_id)
        if msg is not None:
            msg.deleted = True
        elif self._seen.pop((chat_id, message_id), None) is None:
            raise bad_request("Message to delete not found")
        return True

    async def api_send_message_draft(self, p: dict, files: dict) -> bool:
        chat_id = self._chat_id(p)
        ft = format_text(str(p.get("text") or ""), p.get("parse_mode"), p.get("entities"), allow_empty=True)
        if isinstance(self.draft_mode, str):
            raise ApiError(400, self.draft_mode)
        if chat_id < 0:
            raise ApiError(400, "Bad Request: TEXTDRAFT_PEER_INVALID")
        draft_id = p.get("draft_id")
        if not isinstance(draft_id, int) or draft_id == 0:
            raise ApiError(400, "Bad Request: draft_id must be non-zero")
        if len(ft.text) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        self._spend(self.flood.draft(chat_id))
        self.drafts.setdefault(chat_id, []).append({
            "draft_id": draft_id, "text": ft.text, "entities": ft.entities,
            "message_thread_id": p.get("message_thread_id"), "time": time.monotonic()})
        return True

    async def api_send_chat_action(self, p: dict, files: dict) -> bool:
        chat_id = self._chat_id(p)
        if p.get("action") not in CHAT_ACTIONS:
            raise bad_request("Wrong parameter action in request")
        self.chat_actions.append({"chat_id": chat_id, "action": p["action"],
                                  "message_thread_id": p.get("message_thread_id"), "time": time.monotonic()})
        return True

    @staticmethod
    def _scope_key(p: dict) -> str:
        scope = p.get("scope") if isinstance(p.get("scope"), dict) else {"type": "default"}
        return json.dumps([scope, p.get("language_code") or ""], sort_keys=True)

    async def api_set_my_commands(self, p: dict, files: dict) -> bool:
        commands = p.get("commands")
        if commands is None or commands == "":
            commands = []
        if isinstance(commands, str):
            raise bad_request("Can't parse commands JSON object")
        if not isinstance(commands, list):
            raise bad_request("Expected an Array of BotCommand")
        for item in commands:
            if not isinstance(item, dict):
                raise bad_request("Can't parse BotCommand: expected an Object")
            command, description = str(item.get("command", "")).strip(), str(item.get("description", "")).strip()
            if not (1 <= len(command) <= 32) or not all(c.isascii() and (c.isalnum() or c == "_") for c in command):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if command != command.lower():
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not (1 <= len(description) <= 256):
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        self._my_commands[self._scope_key(p)] = commands
        self.commands.append({"commands": commands, "scope": p.get("scope"),
                              "language_code": p.get("language_code")})
        return True

    async def api_delete_my_commands(self, p: dict, files: dict) -> bool:
        self._my_commands.pop(self._scope_key(p), None)
        return True

    async def api_get_my_commands(self, p: dict, files: dict) -> list:
        return self._my_commands.get(self._scope_key(p), [])

    async def api_get_file(self, p: dict, files: dict) -> dict:
        stored = self._files.get(str(p.get("file_id") or ""))
        if stored is None:
            raise bad_request("invalid file_id")
        if stored.file_size is not None and stored.file_size > MAX_DOWNLOAD:
            raise ApiError(400, "Bad Request: file is too big")
        result: dict[str, Any] = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                                  "file_path": stored.file_path}
        if stored.file_size is not None:
            result["file_size"] = stored.file_size
        return result
