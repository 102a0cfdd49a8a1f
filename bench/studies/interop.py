"""The lab's benchmark worker and grpc-go's, in every pairing, across two network namespaces (issue 17, interop).

    python -m bench.studies.interop --out results/interop-<date>      # as root, with grpc-go's worker built; ~2 min
    python -m bench.studies.interop --render results/interop-<date>   # the README's table again, from interop.json

Four pairings, server worker / client worker: lab / lab, go / lab, lab / go, go / go, each worker in a namespace of
its own on one fleet (bench.remote.fleet), driven by the lab's driver (bench.remote.driver.run_scenario), for two
BenchmarkService cells: unary and bidi ping-pong (gRPC's STREAMING), 1 KiB request and reply, the lab's default
closed loop (8 in flight on one channel). The server runs on CPU 0 and the client on CPU 1: the lab's worker pins
its server and generator by the configs' core_list, grpc-go's worker is pinned whole at launch (it ignores
core_list). Every round runs each pairing and cell once, in a seeded shuffled order; the table gives each
measure's median over the rounds. While it measures it holds /dev/cpu_dma_latency at 0 when it can (as `grpclab
run` does) and records whether it did, and the machine's CPU use just before it started.

What a pairing can tell: the server CPU per RPC is the server's whatever the client (a server-side measure), so
the lab's sync server and grpc-go's server can be compared under the same client, and the clients the same way.
RPC/s is the slower side's limit, on one CPU each.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from bench.machine import cpu_latency, environment
from bench.remote import driver, fleet, go_worker
from bench.spec import DEFAULTS, Settings
from bench.spec.cell import normalize

PAIRINGS = (("lab", "lab"), ("go", "lab"), ("lab", "go"), ("go", "go"))  # (server worker, client worker)
RPCS = ("unary", "bidi")
MEASURES = (
    ("rps", "RPC/s", "{:,.0f}"),
    ("server_cpu_us_per_rpc", "server CPU µs/RPC", "{:.1f}"),
    ("loadgen_cpu_us_per_rpc", "client CPU µs/RPC", "{:.1f}"),
    ("lat_p50_ms", "p50 ms", "{:.3f}"),
)
SERVER_CPU, CLIENT_CPU = 0, 1


def cell_for(rpc: str):
    # 16 threads for the lab's sync server: grpc-go's client keeps each of its 8 ping-pong streams open for the
    # whole window, and a sync server holds a thread per open stream (bench.remote.drive.open_streams_problem)
    return normalize({**DEFAULTS, "payload_size": 1024, "service": "benchmark", "rpc": rpc, "workers": 16})


def machine_busy(seconds: float = 3.0) -> float:
    """The share of all CPUs' time that was not idle over the next ``seconds`` (from /proc/stat)."""

    def ticks() -> tuple[int, int]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:9]]
        return sum(values), values[3] + values[4]

    total_a, idle_a = ticks()
    time.sleep(seconds)
    total_b, idle_b = ticks()
    return 1 - (idle_b - idle_a) / max(1, total_b - total_a)


def measure(rounds: int, settings: Settings, seed: int) -> tuple[dict, list[dict]]:
    meta = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": environment.describe(),
        "go_worker": f"{go_worker.PACKAGE}@{go_worker.pinned_version()}",
        "busy_before": round(machine_busy(), 3),
        "settings": {"rounds": rounds, "duration": settings.duration, "warmup": settings.warmup, "seed": seed,
                     "server_cpu": SERVER_CPU, "client_cpu": CLIENT_CPU, "payload_size": 1024,
                     "concurrency": DEFAULTS["concurrency"], "connections": DEFAULTS["connections"]},
    }  # fmt: skip
    rows: list[dict] = []
    with ExitStack() as stack:
        state = stack.enter_context(cpu_latency.hold(0))
        meta["cpu_latency_hold"] = "on" if state.held else f"unavailable: {state.reason}"
        lab = stack.enter_context(fleet.Fleet(tag="interop"))
        workers = dict(
            zip(
                ("lab_server", "lab_client", "go_server", "go_client"),
                fleet.start_workers(lab, ["lab", "lab", "go", "go"], cpus=[None, None, (SERVER_CPU,), (CLIENT_CPU,)]),
                strict=True,
            )
        )
        order = random.Random(seed)
        for round_ in range(rounds):
            steps = [(pairing, rpc) for pairing in PAIRINGS for rpc in RPCS]
            order.shuffle(steps)
            for (server, client), rpc in steps:
                row = driver.run_scenario(
                    cell_for(rpc), settings, workers[f"{server}_server"], workers[f"{client}_client"],
                    run_id="interop", repetition=round_,
                )  # fmt: skip
                if row["failed"]:
                    raise RuntimeError(f"{server}/{client} {rpc}: {row['error']}")
                rows.append({"server": server, "client": client, "rpc": rpc, "round": round_,
                             **{key: row[key] for key, _, _ in MEASURES}})  # fmt: skip
                print(f"round {round_} {server}/{client} {rpc}: {row['rps']:,.0f} RPC/s", file=sys.stderr)
    meta["ended_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return meta, rows


def render_table(rows: Sequence[dict]) -> str:
    """The medians over rounds, one line per pairing and cell (the README quotes this table)."""
    head = ["server / client", "RPC", *[title for _, title, _ in MEASURES]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for server, client in PAIRINGS:
        for rpc in RPCS:
            mine = [r for r in rows if (r["server"], r["client"], r["rpc"]) == (server, client, rpc)]
            if not mine:
                continue
            cells = [fmt.format(statistics.median(r[key] for r in mine)) for key, _, fmt in MEASURES]
            lines.append(f"| {server} / {client} | {rpc} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_markdown(meta: dict, rows: Sequence[dict]) -> str:
    env, s = meta["environment"], meta["settings"]
    return "\n".join([
        "# The lab's benchmark worker and grpc-go's, across two network namespaces",
        "",
        f"- measured {meta['started_at']} .. {meta['ended_at']}, commit {str(env['git'].get('commit'))[:10]}"
        f"{' (dirty)' if env['git'].get('dirty') else ''}; grpc-go's worker: {meta['go_worker']}",
        f"- machine: {env['cpu_model']}, {env['cores']} CPUs, Linux {env['kernel']}, Python "
        f"{env['versions']['python']}, grpcio {env['versions']['grpcio']}",
        f"- cpu_dma_latency hold: {meta['cpu_latency_hold']}; CPU busy in the 3 s before: {meta['busy_before']:.0%}",
        f"- {s['rounds']} rounds, each pairing and cell once per round (seeded shuffle {s['seed']}); "
        f"{s['warmup']:g} s warm-up + {s['duration']:g} s window; {s['payload_size']} B, {s['concurrency']} in "
        f"flight on {s['connections']} channel, closed loop; "
        f"server CPU {s['server_cpu']}, client CPU {s['client_cpu']}",
        "- medians over the rounds",
        "",
        render_table(rows),
    ])  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.studies.interop", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="directory to write interop.json and interop.md into")
    parser.add_argument("--render", type=Path, metavar="DIR", help="print the table of an existing run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args(argv)
    if args.render:
        doc = json.loads((args.render / "interop.json").read_text())
        sys.stdout.write(render_markdown(doc["meta"], doc["rows"]))
        return 0
    if args.out is None:
        parser.error("--out DIR or --render DIR")
    problem = go_worker.missing()
    if problem:
        print(f"interop: {problem}", file=sys.stderr)
        return 2
    settings = Settings(duration=args.duration, warmup=args.warmup, repetitions=1,
                        server_cpus=(SERVER_CPU,), loadgen_cpus=(CLIENT_CPU,), cell_timeout=60.0)  # fmt: skip
    try:
        meta, rows = measure(args.rounds, settings, args.seed)
    except fleet.FleetError as exc:  # no privilege, no free subnet, a worker that would not start: one line
        print(f"interop: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "interop.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    (args.out / "interop.md").write_text(render_markdown(meta, rows))
    sys.stdout.write(render_markdown(meta, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
