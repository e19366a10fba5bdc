"""App endpoints of the fake Dify server other than chat-messages: metadata, files, conversations, messages.

Shapes follow recordings 13-26 and 34-38 of tests/data/dify-0.15.3 and dify-1.12.1.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from aiohttp import web

from tests.fakes.fake_dify_models import (
    GENERATED_TITLE,
    SUGGESTED_QUESTIONS,
    Conversation,
    Message,
    UploadedFile,
    new_id,
)
from tests.fakes.fake_dify_wire import Ctx

SYSTEM_PARAMETERS = {
    "image_file_size_limit": 10, "video_file_size_limit": 100, "audio_file_size_limit": 50, "file_size_limit": 15,
    "workflow_file_upload_limit": 10,
}


def _parameters(ctx: Ctx) -> dict[str, Any]:
    fake = ctx.fake
    chatflow = fake.app_mode == "advanced-chat"
    if chatflow:  # recording 84
        sensitive: dict[str, Any] = {"enabled": False}
        file_upload: dict[str, Any] = {
            "image": {"enabled": False, "number_limits": 3, "transfer_methods": ["local_file", "remote_url"]},
            "enabled": False, "allowed_file_types": [], "allowed_file_extensions": [],
            "allowed_file_upload_methods": ["local_file", "remote_url"], "number_limits": 3,
        }
    else:  # recording 13
        sensitive = {"enabled": False, "type": "", "configs": []}
        file_upload = {
            "image": {"enabled": True, "number_limits": 3, "detail": "high", "transfer_methods": ["remote_url",
                                                                                                  "local_file"]},
            "enabled": True, "allowed_file_types": ["image", "document"],
            "allowed_file_extensions": [".png", ".jpg", ".txt", ".md", ".pdf"],
            "allowed_file_upload_methods": ["remote_url", "local_file"], "number_limits": 3,
        }
    return {
        "opening_statement": fake.opening_statement,
        "suggested_questions": [] if chatflow else ["What can you do?"],
        "suggested_questions_after_answer": {"enabled": True}, "speech_to_text": {"enabled": False},
        "text_to_speech": {"enabled": False, "voice": "", "language": ""}, "retriever_resource": {"enabled": True},
        "annotation_reply": {"enabled": False}, "more_like_this": {"enabled": False},
        "user_input_form": fake.user_input_form, "sensitive_word_avoidance": sensitive, "file_upload": file_upload,
        "system_parameters": {**SYSTEM_PARAMETERS, "file_size_limit": fake.upload_limit_mb},
    }


async def parameters(ctx: Ctx) -> web.Response:
    return ctx.wire.json(_parameters(ctx))


async def info(ctx: Ctx) -> web.Response:
    fake = ctx.fake
    body: dict[str, Any] = {"name": f"fake-{fake.app_mode}", "description": "fake Dify app", "tags": []}
    if ctx.wire.v1:
        body.update(mode=fake.app_mode, author_name="admin")
    return ctx.wire.json(body)


async def meta(ctx: Ctx) -> web.Response:
    return ctx.wire.json({"tool_icons": {}})


async def index(ctx: Ctx) -> web.Response:
    version = "1.12.1" if ctx.wire.v1 else "0.15.3"
    return ctx.wire.json({"welcome": "Dify OpenAPI", "api_version": "v1", "server_version": version})


async def files_upload(ctx: Ctx) -> web.Response:
    wire, fake = ctx.wire, ctx.fake
    if "file" not in ctx.files:
        if wire.v1:
            return wire.error(400, "no_file_uploaded", "Please upload your file.")
        return wire.error(400, "bad_request_key_error",
                          "The browser (or proxy) sent a request that this server could not understand.")
    if ctx.file_count > 1:
        return wire.error(400, "too_many_files", "Only one file is allowed.")
    filename, content, mime = ctx.files["file"]
    if not filename:
        return wire.error(400, "filename_not_exists_error", "The specified filename does not exist.")
    if len(content) > fake.upload_limit_mb * 1024 * 1024:
        return wire.error(413, "file_too_large", f"File size exceeded. {len(content) / 1024 / 1024:.2f} MB > "
                                                 f"{fake.upload_limit_mb:g} MB")
    user = (ctx.form or {}).get("user") or "DEFAULT-USER"
    up = UploadedFile(id=new_id(), name=filename, content=content, mime_type=mime, user=user)
    fake.uploads[up.id] = up
    body: dict[str, Any] = {"id": up.id, "name": up.name, "size": len(content), "extension": up.extension,
                            "mime_type": mime, "created_by": fake.end_user_id(user), "created_at": int(up.created_at)}
    if wire.v1:
        stamp = int(time.time())
        body.update(preview_url=None, source_url=f"{fake.root_url}/files/{up.id}/file-preview?timestamp={stamp}"
                    f"&nonce={secrets.token_hex(16)}&sign=fake", original_url=None, user_id=None,
                    tenant_id=fake.tenant_id, conversation_id=None, file_key=None)
    return wire.json(body, status=201)


# ---- conversations and messages -------------------------------------------------------------


def _conversation(ctx: Ctx, cid: str, user: Any) -> Conversation | None:
    conv = ctx.fake.conversations.get(cid)
    if conv is None or conv.deleted or conv.user != user:
        return None
    return conv


def _conversation_json(ctx: Ctx, conv: Conversation) -> dict[str, Any]:
    return {"id": conv.id, "name": conv.name, "inputs": conv.inputs, "status": "normal",
            "introduction": ctx.fake.opening_statement, "created_at": conv.created_at, "updated_at": conv.updated_at}


def _message_json(ctx: Ctx, msg: Message) -> dict[str, Any]:
    head = {"id": msg.id, "conversation_id": msg.conversation_id, "parent_message_id": "00000000-0000-0000-0000-"
            "000000000000", "inputs": msg.inputs, "query": msg.query, "answer": msg.answer}
    files = {"message_files": []}
    tail = {"feedback": msg.feedback, "retriever_resources": msg.retriever_resources, "created_at": msg.created_at,
            "agent_thoughts": []}
    state = {"status": msg.status, "error": msg.error}
    return {**head, **tail, **files, **state} if ctx.wire.v1 else {**head, **files, **tail, **state}


async def messages(ctx: Ctx) -> web.Response:
    cid = ctx.query.get("conversation_id", "")
    if not cid:
        return ctx.wire.invalid("conversation_id is required")
    conv = _conversation(ctx, cid, ctx.query.get("user"))
    if conv is None:
        return ctx.wire.error(404, "not_found", "Conversation Not Exists.", ctx.path)
    limit = int(ctx.query.get("limit") or 20)
    items = list(conv.messages)
    if first_id := ctx.query.get("first_id"):
        ids = [m.id for m in items]
        if first_id not in ids:
            return ctx.wire.error(404, "not_found", "First Message Not Exists.", ctx.path)
        items = items[: ids.index(first_id)]
    page = items[-limit:]
    data = [_message_json(ctx, m) for m in page]
    return ctx.wire.json({"limit": limit, "has_more": len(items) > len(page), "data": data})


async def conversations(ctx: Ctx) -> web.Response:
    user = ctx.query.get("user")
    limit = int(ctx.query.get("limit") or 20)
    sort_by = ctx.query.get("sort_by") or "-updated_at"
    items = [c for c in ctx.fake.conversations.values() if not c.deleted and c.user == user]
    key = sort_by.lstrip("-")
    items.sort(key=lambda c: (getattr(c, key, c.updated_at), ctx.fake._order(c.id)), reverse=sort_by.startswith("-"))
    if last_id := ctx.query.get("last_id"):
        ids = [c.id for c in items]
        if last_id not in ids:
            return ctx.wire.error(404, "not_found", "Last Conversation Not Exists.", ctx.path)
        items = items[ids.index(last_id) + 1:]
    page = items[:limit]
    data = [_conversation_json(ctx, c) for c in page]
    return ctx.wire.json({"limit": limit, "has_more": len(items) > limit, "data": data})


async def rename(ctx: Ctx) -> web.Response:
    body = ctx.body
    if not body.get("user"):
        return ctx.wire.invalid("Arg user must be provided.")
    conv = _conversation(ctx, ctx.params["cid"], body.get("user"))
    if conv is None:
        return ctx.wire.error(404, "not_found", "Conversation Not Exists.", ctx.path)
    if body.get("auto_generate"):
        if not conv.messages:
            return ctx.wire.invalid("Conversation has no messages.")
        conv.name = GENERATED_TITLE
    elif body.get("name"):
        conv.name = str(body["name"])
    else:
        return ctx.wire.invalid("name is required when auto_generate is false")
    conv.updated_at = int(time.time())
    return ctx.wire.json(_conversation_json(ctx, conv))


async def delete_conversation(ctx: Ctx) -> web.Response:
    user = ctx.body.get("user")
    if not user:
        return ctx.wire.invalid("Arg user must be provided.")
    conv = _conversation(ctx, ctx.params["cid"], user)
    if conv is not None:
        conv.deleted = True
    if ctx.wire.v1:  # 1.12: 204 even when unknown, already deleted or another user's (recording 38)
        return ctx.wire.no_content()
    if conv is None:
        return ctx.wire.error(404, "not_found", "Conversation Not Exists.")
    return ctx.wire.success()


def _message(ctx: Ctx, user: Any) -> Message | None:
    for conv in ctx.fake.conversations.values():
        if conv.user == user and not conv.deleted:
            for msg in conv.messages:
                if msg.id == ctx.params["mid"]:
                    return msg
    return None


async def feedback(ctx: Ctx) -> web.Response:
    body = ctx.body
    if not body.get("user"):
        return ctx.wire.invalid("Arg user must be provided.")
    msg = _message(ctx, body["user"])
    if msg is None:
        return ctx.wire.error(404, "not_found", "Message Not Exists.", ctx.path)
    rating = body.get("rating")
    if rating not in (None, "like", "dislike"):
        return ctx.wire.invalid("rating must be like, dislike or null")
    if rating is None and msg.feedback is None:
        return ctx.wire.invalid("rating cannot be None when feedback not exists")
    msg.feedback = {"rating": rating} if rating else None
    ctx.fake.feedbacks.append({"message_id": msg.id, "rating": rating, "content": body.get("content")})
    return ctx.wire.success()


async def suggested(ctx: Ctx) -> web.Response:
    msg = _message(ctx, ctx.query.get("user"))
    if msg is None:
        return ctx.wire.error(404, "not_found", "Message Not Exists.", ctx.path)
    return ctx.wire.json({"result": "success", "data": SUGGESTED_QUESTIONS})
