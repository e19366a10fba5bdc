"""The `dify-bridge` command: serve, chat, doctor, kb add / kb list."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from .config import ConfigError, Settings, load_settings
from .logs import setup_logging

log = logging.getLogger("bots.cli")

NO_ADAPTER = (
    "dify-bridge serve: no chat platform is configured.\n"
    "Set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (Events API) or SLACK_BOT_TOKEN and SLACK_APP_TOKEN\n"
    "(Socket Mode) for Slack, and/or TELEGRAM_BOT_TOKEN for Telegram, in the environment or .env."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dify-bridge", description="Dify apps in Slack and Telegram.")
    parser.add_argument("--env-file", default=".env", help="dotenv file to read (default: .env)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run every configured adapter and the HTTP server")
    sub.add_parser("chat", help="chat with the configured Dify app in the terminal")
    sub.add_parser("doctor", help="check the configuration and every connection")
    kb = sub.add_parser("kb", help="knowledge base: add documents, list them")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    add = kb_sub.add_parser("add", help="add files to the knowledge base")
    add.add_argument("paths", nargs="+", metavar="PATH")
    add.add_argument("--dataset", help="knowledge base id (default: DIFY_DATASET_ID)")
    lst = kb_sub.add_parser("list", help="list the knowledge base's documents with their status")
    lst.add_argument("--dataset", help="knowledge base id (default: DIFY_DATASET_ID)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(env_file=args.env_file)
    except ConfigError as exc:
        if args.command == "doctor":
            print("✗ Configuration: invalid", file=sys.stdout)
            for line in str(exc).splitlines():
                print(f"    {line}", file=sys.stdout)
            return 1
        print(f"dify-bridge: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    quiet = args.command in ("chat", "kb")
    setup_logging("ERROR" if quiet and settings.log_level == "INFO" else settings.log_level,
                  settings.log_format, settings.secrets())
    try:
        return asyncio.run(_run(args, settings))
    except KeyboardInterrupt:
        return 130


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "doctor":
        from .doctor import run_doctor

        return await run_doctor(settings, sys.stdout)
    if args.command == "serve":
        return await _serve(settings)
    if args.command == "chat":
        return await _chat(settings)
    if args.command == "kb":
        from .kb_cli import run_kb

        return await run_kb(args, settings)
    return 2


async def _serve(settings: Settings) -> int:
    from .app import Bridge
    from .server import Server

    if not (settings.slack_enabled or settings.telegram_enabled):
        print(NO_ADAPTER, file=sys.stderr)
        return 2
    if settings.dify_api_key is None:
        print("dify-bridge serve: DIFY_API_KEY is not set (e.g. DIFY_API_KEY=app-…)", file=sys.stderr)
        return 2
    if settings.allowed_users.empty:
        log.warning("ALLOWED_USERS is empty: anyone who can reach the bot can use it")
    bridge = await Bridge.create(settings)
    await Server(bridge, settings.host, settings.port).run()
    return 0


async def _chat(settings: Settings) -> int:
    from adapters.console import ConsoleChat

    from .app import Bridge

    if settings.dify_api_key is None:
        print("dify-bridge chat: DIFY_API_KEY is not set (e.g. DIFY_API_KEY=app-…)", file=sys.stderr)
        return 2
    try:
        bridge = await Bridge.create(settings, with_adapters=False)
    except Exception as exc:  # noqa: BLE001
        print(f"dify-bridge chat: cannot open the database: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    try:
        chat = ConsoleChat(bridge.engine)
        if sys.stdin.isatty():
            return await chat.run_interactive(sys.stdin)
        return await chat.run_piped(sys.stdin)
    finally:
        await bridge.engine.drain(0)
        await bridge.aclose()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
