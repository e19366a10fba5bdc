"""How updates arrive: webhook (secret checked, claimed before 200), long polling, exactly once, start-up calls."""

from __future__ import annotations

from tests.fakes.fake_dify import Plan
from tests.helpers import telegram_updates as tu

from .conftest import PRIVATE, SECRET


async def test_webhook_mode_registers_the_webhook_and_the_command_menu(webhook):
    tb = webhook
    hook = tb.tg.webhook
    assert hook is not None and hook["url"] == f"{tb.url}/telegram/webhook"
    assert hook["secret_token"] == SECRET and hook["allowed_updates"] == ["message"]
    menus = {c["scope"]["type"]: [x["command"] for x in c["commands"]] for c in tb.tg.commands}
    assert menus == {"all_private_chats": ["new", "help", "kb"], "all_group_chats": ["ask", "new", "help", "kb"]}
    tb.dify.plan(Plan(answer="Delivered by webhook."))
    tb.tg.push_update(tu.private_message("hello"))  # the fake POSTs it to the bridge with the secret
    await tb.tg.wait_for(lambda f: f.final_text(PRIVATE) == ["Delivered by webhook."])
    assert [d["status"] for d in tb.tg.webhook_deliveries] == [200]
    assert tb.tg.calls_to("getUpdates") == []


async def test_a_wrong_or_missing_secret_is_rejected_and_nothing_is_processed(webhook):
    tb = webhook
    tb.dify.plan(Plan(answer="Only the genuine one."))
    update = tu.private_message("forged?")
    assert await tb.post(update, secret=None) == 401
    assert await tb.post(update, secret="not-the-secret") == 403
    assert await tb.post(update, secret=SECRET[:-1]) == 403
    assert tb.adapter.received == 0 and tb.dify.chat_requests() == []
    assert await tb.post(update) == 200, "not claimed by the rejected attempts"
    await tb.tg.wait_for(lambda f: f.final_text(PRIVATE) == ["Only the genuine one."])
    assert len(tb.dify.chat_requests()) == 1


async def test_a_redelivered_webhook_update_is_answered_once(webhook):
    tb = webhook
    tb.dify.plan(Plan(answer="Once.", token_gap=0.02), Plan(answer="Twice?!"))
    update = tu.private_message("hello")
    assert await tb.post(update) == 200
    assert await tb.post(update) == 200, "a duplicate is acknowledged, so Telegram stops sending it"
    tb.tg.push_update(update)  # and once more through the fake's own delivery
    await tb.tg.wait_for(lambda f: f.webhook_deliveries)
    await tb.tg.wait_for(lambda f: f.final_text(PRIVATE) == ["Once."])
    assert tb.adapter.received == 3 and len(tb.dify.chat_requests()) == 1


async def test_polling_answers_end_to_end_and_deletes_a_webhook_first(start_bridge):
    tb = await start_bridge(mode="webhook")
    assert tb.tg.webhook is not None
    await tb.restart(TELEGRAM_WEBHOOK_URL=None, TELEGRAM_WEBHOOK_SECRET=None)  # switch back to polling
    assert tb.tg.webhook is None and tb.tg.calls_to("deleteWebhook")
    tb.dify.plan(Plan(answer="Polled and answered."), Plan(answer="Second answer."))
    update = tu.private_message("over long polling")
    tb.tg.push_update(update)
    await tb.tg.wait_for(lambda f: f.final_text(PRIVATE) == ["Polled and answered."])
    polls = tb.tg.calls_to("getUpdates")
    assert polls[0].params["allowed_updates"] == ["message"] and polls[0].params["timeout"] > 0
    tb.tg.push_update(update)  # the same update_id again (a restart before it was confirmed)
    tb.tg.push_update(tu.private_message("next"))
    await tb.tg.wait_for(lambda f: f.final_text(PRIVATE) == ["Polled and answered.", "Second answer."])
    assert [b["query"] for b in tb.chat_bodies()] == ["over long polling", "next"]


async def test_a_restart_in_polling_mode_does_not_answer_twice(start_bridge):
    tb = await start_bridge()
    tb.dify.plan(Plan(answer="Before the restart."), Plan(answer="After the restart."))
    first = tu.private_message("first")
    tb.tg.push_update(first)
    await tb.tg.wait_for(lambda f: f.final_text(PRIVATE) == ["Before the restart."])
    await tb.restart()
    tb.tg.push_update(first)  # Telegram hands an unconfirmed update to the new process
    tb.tg.push_update(tu.private_message("second"))
    await tb.tg.wait_for(lambda f: f.final_text(PRIVATE)[-1:] == ["After the restart."])
    await tb.adapter.wait_received(2)
    assert [b["query"] for b in tb.chat_bodies()] == ["first", "second"]


async def test_while_draining_the_webhook_answers_503_without_claiming(webhook):
    tb = webhook
    assert tb.bridge is not None
    await tb.bridge.engine.drain(0)  # what a shutdown does first
    update = tu.private_message("too late")
    assert await tb.post(update) == 503
    assert tb.adapter.received == 0
    assert await tb.bridge.repo.claim("telegram", str(update["update_id"])), "the update was not claimed"
