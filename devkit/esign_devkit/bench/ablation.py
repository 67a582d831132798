"""What each aiogram patch earns, in one process: `python -m esign_devkit.bench.ablation`.

The bot runs through aiogram's public API; a patch of how aiogram works stays only if it earns
at least 10 % of the CPU an update costs (docs/performance.md). This bench measures each one
against the bot without it, like for like: the same process (collector, logging and Redis pool
as `python -m bot bench`), the same Redis, and rounds interleaved in an order that turns from
one round to the next (bare aiogram, each variant), so that a neighbour's load weighs on all.

    aiogram     AIOGRAM_TUNING=false: aiogram's own router walk
    tuned       AIOGRAM_TUNING=true: bot/runtime/aiogram_tuning.py

Reported per variant: CPU ms per update over all its rounds (this process's CPU time), the
per-round figures (their spread), updates/s, and what the patch saves against `aiogram`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
from typing import Any

VARIANTS: dict[str, dict[str, Any]] = {
    "aiogram": {"aiogram_tuning": False},
    "tuned": {"aiogram_tuning": True},
}


async def ablation(users: int, rounds: int, redis_url: str, variants: list[str],
                   progress: Any = lambda _: None) -> dict[str, Any]:
    from esign_devkit.bench.run import (
        Bench,
        Side,
        _pair_ratio,
        _session,
        _warm_up,
        gc_tuning,
        load_average,
        machine,
        process_settings,
    )

    loads = [load_average()]
    async with _session(redis_url, 64, users) as (run, first):
        benches = {name: Bench(run, users, **VARIANTS[name]) for name in variants}
        for bench in benches.values():
            await _warm_up(run, bench, baseline=bench is next(iter(benches.values())))
        gc_tuning.freeze_start_up()
        sides: dict[str, list[Side]] = {name: [] for name in ["bare aiogram", *variants]}
        order = ["bare aiogram", *variants]
        done = total = 0
        for r in range(rounds):
            turn = order[r % len(order):] + order[:r % len(order)]
            for name in turn:
                progress(f"round {r + 1}/{rounds}: {name}")
                if name == "bare aiogram":
                    sides[name].append(await first.baseline_round(users))
                    continue
                side, buyers = await benches[name].bot_round(users)
                ok, _ = await benches[name].verify(buyers)
                done, total = done + ok, total + users
                sides[name].append(side)
                await run.cleanup()
            loads.append(load_average())
        for bench in benches.values():
            await bench.close()
    rows: dict[str, Any] = {}
    for name, measured in sides.items():
        cpu = sum(s.cpu_seconds for s in measured) * 1000 / sum(s.updates for s in measured)
        rows[name] = {
            "cpu_ms_per_update": round(cpu, 3),
            "rounds_cpu_ms_per_update": [round(s.cpu_ms_per_update, 3) for s in measured],
            "updates_per_s": round(statistics.median(s.per_s for s in measured), 1),
            "rounds_updates_per_s": [round(s.per_s, 1) for s in measured],
            "redis_roundtrips_per_update": round(sum(s.round_trips for s in measured)
                                                 / sum(s.updates for s in measured), 3),
        }
        if name != "bare aiogram":
            rows[name]["ratio_vs_aiogram"] = _pair_ratio(measured, sides["bare aiogram"])
            rows[name]["cpu_ratio_vs_aiogram"] = round(rows["bare aiogram"]["cpu_ms_per_update"] / cpu, 3)
    if "aiogram" in rows:
        stock = rows["aiogram"]
        for name in variants:
            if name != "aiogram":
                rows[name]["cpu_saved_vs_aiogram_walk"] = round(1 - rows[name]["cpu_ms_per_update"]
                                                                / stock["cpu_ms_per_update"], 3)
                rows[name]["rounds_cpu_saved"] = [
                    round(1 - a.cpu_ms_per_update / b.cpu_ms_per_update, 3)
                    for a, b in zip(sides[name], sides["aiogram"], strict=True)]
    return {"users": users, "rounds": rounds, "variants": rows, "purchases_completed": done, "purchases": total,
            "errors": run.errors.count, "load_average_by_round": loads, "machine": machine(),
            **process_settings(first.settings)}


def table(result: dict[str, Any]) -> str:
    head = (f"{'variant':14} {'CPU ms/upd':>10} {'rounds CPU ms/upd':>26} {'upd/s':>8} {'ratio':>6} "
            f"{'RT/upd':>7} {'CPU saved':>10} {'rounds saved':>22}")
    lines = [head]
    for name, r in result["variants"].items():
        lines.append(f"{name:14} {r['cpu_ms_per_update']:>10} {r['rounds_cpu_ms_per_update']!s:>26} "
                     f"{r['updates_per_s']:>8} {r.get('ratio_vs_aiogram', ''):>6} {r['redis_roundtrips_per_update']:>7} "
                     f"{r.get('cpu_saved_vs_aiogram_walk', ''):>10} {r.get('rounds_cpu_saved', '')!s:>22}")
    lines.append(f"purchases completed {result['purchases_completed']}/{result['purchases']}, errors {result['errors']}; "
                 f"load average by round {result['load_average_by_round']}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from esign_devkit.bench.run import DEFAULT_REDIS_URL

    parser = argparse.ArgumentParser(prog="python -m esign_devkit.bench.ablation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated variants (default: all of {', '.join(VARIANTS)})")
    parser.add_argument("-n", "--users", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.only.split(",")] if args.only else list(VARIANTS)
    if unknown := [v for v in variants if v not in VARIANTS]:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    progress = (lambda _: None) if args.json else (lambda text: print(f"... {text}", file=sys.stderr, flush=True))
    result = asyncio.run(ablation(args.users, args.rounds, args.redis, variants, progress))
    print(json.dumps(result, ensure_ascii=False) if args.json else table(result))
    return 0 if result["purchases_completed"] == result["purchases"] and not result["errors"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
