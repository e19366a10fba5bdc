"""POST /chat-messages and /chat-messages/{task_id}/stop of the fake Dify server.

Validation order is Dify's: auth, then `user` ("Arg user must be provided."), then the payload (0.15
reqparse / 1.12 pydantic), agent-in-blocking, the conversation lookup, then required inputs of a new
conversation. Each authenticated chat-messages request consumes one Plan (FakeDify.plan) first, so a planned
HTTP error wins over validation.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field, field_validator

from tests.fakes.fake_dify_models import Conversation
from tests.fakes.fake_dify_run import ChatRun
from tests.fakes.fake_dify_wire import Ctx, validation_message


class ChatRequestPayload(BaseModel):
    """Dify 1.12's request model (controllers/service_api/app/completion.py)."""

    inputs: dict[str, Any]
    query: str
    files: list[dict[str, Any]] | None = None
    response_mode: Literal["blocking", "streaming"] | None = None
    conversation_id: str | None = Field(default=None)
    retriever_from: str = Field(default="dev")
    auto_generate_name: bool = Field(default=True)
    workflow_id: str | None = Field(default=None)

    @field_validator("conversation_id", mode="before")
    @classmethod
    def _uuid(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
        if not value:
            return None
        try:
            return str(uuid.UUID(str(value)))
        except ValueError as exc:
            raise ValueError("conversation_id must be a valid UUID") from exc


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _validate_payload(ctx: Ctx) -> web.Response | None:
    body, wire = ctx.body, ctx.wire
    if wire.v1:
        message = validation_message(ChatRequestPayload, body)
        return wire.invalid(message) if message else None
    for name in ("inputs", "query"):
        if name not in body:
            return wire.reqparse_error("Missing required parameter in the JSON body", name)
    mode = body.get("response_mode")
    if mode is not None and mode not in ("blocking", "streaming"):
        return wire.reqparse_error(f"{mode} is not a valid choice", "response_mode")
    cid = body.get("conversation_id")
    if cid and not _is_uuid(str(cid)):
        return wire.reqparse_error(f"{cid} is not a valid uuid.", "conversation_id")
    return None


def _missing_input(form: list, inputs: dict[str, Any]) -> str | None:
    for item in form:
        for spec in item.values():
            if isinstance(spec, dict) and spec.get("required") and not inputs.get(spec.get("variable", "")):
                return f"{spec.get('variable')} is required in input form"
    return None


async def chat_messages(ctx: Ctx) -> web.StreamResponse:
    fake, wire, body = ctx.fake, ctx.wire, ctx.body
    plan = fake._next_plan()
    if plan.html_error:
        status = plan.http_error[0] if plan.http_error else 502
        return wire.html(status, wire.nginx_page(status))
    if plan.http_error:
        status, code, message = plan.http_error
        extra = {"Retry-After": f"{plan.retry_after:g}"} if plan.retry_after is not None else {}
        return wire.error(status, code, message, **extra)
    user = body.get("user")
    if not user:
        return wire.invalid("Arg user must be provided.")
    if (problem := _validate_payload(ctx)) is not None:
        return problem
    mode = plan.mode if plan.mode != "chat" else fake.app_mode
    streaming = body.get("response_mode") == "streaming"
    if mode == "agent-chat" and not streaming:
        return wire.invalid("Agent Chat App does not support blocking mode")
    cid = str(body.get("conversation_id") or "").strip()
    conv = fake.conversations.get(cid) if cid else None
    if cid and (conv is None or conv.deleted or conv.user != user):
        return wire.error(404, "not_found", "Conversation Not Exists.", ctx.path)
    inputs = body.get("inputs") if isinstance(body.get("inputs"), dict) else {}
    if conv is None:
        if (missing := _missing_input(fake.user_input_form, inputs)) is not None:
            return wire.invalid(missing)
        conv = Conversation(id=str(uuid.uuid4()), user=str(user), app=fake.app_mode, inputs=dict(inputs))
        fake.conversations[conv.id] = conv
        fake._order(conv.id)
    run = ChatRun(ctx, plan, conv, mode)
    return await (run.stream() if streaming else run.blocking())


async def stop_task(ctx: Ctx) -> web.Response:
    user = ctx.body.get("user")
    if not user:
        return ctx.wire.invalid("Arg user must be provided.")
    task_id = ctx.params["task_id"]
    ctx.fake.stopped_tasks.add(task_id)
    owner = ctx.fake._tasks.get(task_id)
    if owner is not None and owner[0] == user:
        owner[1].set()
    return ctx.wire.success()
