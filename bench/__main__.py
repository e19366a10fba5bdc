"""`python -m bench`: the Dify Bridge benchmark (see README, "Performance").

    .venv/bin/python -m bench            # everything, ~4 minutes on 2 cores
    .venv/bin/python -m bench --quick    # 1 and 10 conversations only, no extras
    .venv/bin/python -m bench --only slack-100,telegram-1000
    .venv/bin/python -m bench --extras-only  # `dify-bridge chat` and the 15 MB /kb add

Prints a table and writes bench/results.json. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.report import machine, table, write_json
from bench.scenario import AnswerShape, Spec, run_scenario

DEFAULT_OUT = Path(__file__).resolve().parent / "results.json"
LEVELS = (1, 10, 100, 1000)
MIXES = ("slack", "telegram", "mixed")


def specs(args: argparse.Namespace) -> list[Spec]:
    levels = (1, 10) if args.quick else LEVELS
    out = []
    for n in levels:
        binding = n >= 100
        for mix in MIXES:
            out.append(Spec(
                name=f"{mix}-{n}", mix=mix, concurrency=n, rounds=args.rounds_at_1 if n == 1 else 1,
                slack_scale=args.slack_scale if binding else 1.0,
                telegram_scale=args.telegram_scale if binding else 1.0))
    if args.only:
        wanted = set(args.only.split(","))
        out = [s for s in out if s.name in wanted]
    if args.extras_only:
        out = []
    return out


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="only 1 and 10 concurrent conversations, no extras")
    p.add_argument("--only", help="comma-separated scenario names, e.g. slack-100,mixed-10")
    p.add_argument("--no-extras", action="store_true", help="skip the /kb add and `dify-bridge chat` measurements")
    p.add_argument("--extras-only", action="store_true", help="only the /kb add and `dify-bridge chat` measurements")
    p.add_argument("--slack-scale", type=float, default=60.0,
                   help="divide Slack's rate windows by this where budgets bind (default 60: a minute -> a second)")
    p.add_argument("--telegram-scale", type=float, default=1.0,
                   help="divide Telegram's flood windows by this where budgets bind (default 1: real)")
    p.add_argument("--rounds-at-1", type=int, default=10, help="sequential answers at concurrency 1")
    p.add_argument("--ttft", type=float, default=0.2, help="fake Dify time to first token, s")
    p.add_argument("--tokens", type=int, default=30, help="tokens per answer")
    p.add_argument("--gap", type=float, default=0.02, help="gap between tokens, s")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="sample the bridge with py-spy (if installed) into DIR/bench-profile-<scenario>.txt")
    p.add_argument("--bridge-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra environment for the bridge process (A/B experiments), repeatable")
    p.add_argument("--readme", type=Path, metavar="FILE", help="also write the README Performance section here")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON path")
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    shape = AnswerShape(ttft=args.ttft, tokens=args.tokens, gap=args.gap)
    results: dict[str, Any] = {
        "command": "python -m bench " + " ".join(sys.argv[1:]),
        "machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "answer_shape": {"ttft_s": shape.ttft, "tokens": shape.tokens, "gap_s": shape.gap},
        "scales": {"slack": args.slack_scale, "telegram": args.telegram_scale},
        "scenarios": [], "failed": [], "extras": {},
        "full_run": not (args.quick or args.only or args.extras_only or args.no_extras),
    }
    t0 = time.monotonic()
    for spec in specs(args):
        print(f"running {spec.name} ({spec.budgets_label}) …", flush=True)
        extra = dict(item.split("=", 1) for item in args.bridge_env)
        try:
            results["scenarios"].append(await run_scenario(spec, shape, profile_dir=args.profile, extra_env=extra))
        except Exception as exc:  # noqa: BLE001 - one broken scenario must not hide the others
            print(f"  ! {spec.name} failed: {type(exc).__name__}: {exc}", flush=True)
            results["failed"].append({"name": spec.name, "error": f"{type(exc).__name__}: {exc}"})
    if args.extras_only or not (args.no_extras or args.only or args.quick):
        from bench.extras import run_extras

        results["extras"] = await run_extras(shape, log=print)
    results["total_s"] = time.monotonic() - t0
    results["machine"]["loadavg_at_end"] = os.getloadavg()
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    results = asyncio.run(run(args))
    print()
    if results["scenarios"]:
        print(table(results))
    from bench.report import extras_text, targets_text

    print(extras_text(results))
    print(targets_text(results))
    write_json(results, args.out)
    print(f"\nresults: {args.out}  (total {results['total_s']:.0f} s)")
    if args.readme:
        from bench.report import readme_section

        args.readme.write_text(readme_section(results) + "\n", encoding="utf-8")
        print(f"README section: {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
