"""`grpclab`: the lab's command line. Parses arguments and hands each subcommand to its module.

Every user mistake ends as one line on stderr and exit code 2: the modules raise
their own error types and this file is the only place that prints them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn

EXIT_USAGE = 2


class UsageError(Exception):
    """A bad argument or input file: printed as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints the whole usage block; the lab's rule is one clear line.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _user_errors() -> tuple[type[Exception], ...]:
    """Exception types that mean 'the user gave something that cannot work' (not a bug)."""
    from servers.certs import CertError
    from servers.config import ConfigError
    from servers.faults import FaultConfigError
    from servers.transport import BindError

    from .analysis.results import ResultsError
    from .run.placement import RunError
    from .spec import SpecError

    return (UsageError, CertError, ConfigError, FaultConfigError, BindError, SpecError, ResultsError, RunError)


def _cmd_serve(args: argparse.Namespace) -> int:
    from servers import serve
    from servers.config import ServerConfig

    config = ServerConfig(
        impl=args.impl,
        host=args.host,
        port=args.port,
        workers=args.workers,
        processes=args.processes,
        tls_dir=args.tls,
        mtls=args.mtls,
        compression=args.compression,
        max_message_bytes=args.max_message_bytes,
        max_concurrent_rpcs=args.max_concurrent_rpcs,
        grace=args.grace,
        uvloop=args.uvloop,
        options=args.options,
        benchmark_service=args.benchmark_service,
    )
    if args.exit_with_parent:
        serve.exit_with_parent(os.getppid())
    return serve.run(config)


def _cmd_worker(args: argparse.Namespace) -> int:
    from .remote.worker import serve

    port = args.driver_port if args.driver_port is not None else os.environ.get("DRIVER_PORT")
    if port is None:
        raise UsageError("--driver-port: required (or set DRIVER_PORT, as a LoadTest's worker pods have it)")
    try:
        port = int(port)
    except ValueError:
        raise UsageError(f"--driver-port: expected a port number, got {port!r}") from None
    if not 0 <= port <= 65535:
        raise UsageError(f"--driver-port: must be 0-65535, got {port}")
    if args.exit_with_parent:
        from servers.serve import exit_with_parent

        exit_with_parent(os.getppid())
    return serve(port, args.host, args.certs)


def _cmd_certs(args: argparse.Namespace) -> int:
    from servers import certs

    paths = certs.generate(args.dir, days=args.days, overwrite=args.force)
    print(f"certificates in {paths.dir}: ca.crt, server.crt/.key, client.crt/.key (keys 0600)")
    return 0


def _cmd_call(args: argparse.Namespace) -> int:
    from .load.call import run_calls

    return run_calls(args.target, tls_dir=args.tls, compression=args.compression, timeout=args.timeout)


def _cmd_run(args: argparse.Namespace) -> int:
    from .run.command import run

    return run(
        spec_path=args.spec,
        out=args.out,
        resume=args.resume,
        filter_expr=args.filter,
        duration=args.duration,
        repetitions=args.repetitions,
        server_cpus=args.server_cpus,
        loadgen_cpus=args.loadgen_cpus,
        cpu_latency_hold=args.cpu_latency_hold,
        calibrate=args.calibrate,
        hosts=args.hosts,
    )


def _cmd_doctor(args: argparse.Namespace) -> int:
    from .machine.doctor import main as doctor

    return doctor()


def _cmd_system(args: argparse.Namespace) -> int:
    from .machine.system import main as system

    return system(as_json=args.json, probe_wakeup=args.wakeup)


def _cmd_system_tune(args: argparse.Namespace) -> int:
    from .machine.cpu_latency import NO_REQUEST_US, tune

    if not 0 <= args.us <= NO_REQUEST_US:
        raise UsageError(f"--us: must be 0..{NO_REQUEST_US} (microseconds), got {args.us}")
    if args.seconds is not None and args.seconds <= 0:
        raise UsageError(f"--seconds: must be > 0, got {args.seconds:g}")
    return tune(args.us, args.seconds)


def _cmd_report(args: argparse.Namespace) -> int:
    from .analysis.report import write

    print(write(args.run_dir, args.out))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from .gate.compare import CompareError, main

    try:
        return main(
            args.base_run,
            args.head_run,
            metrics=args.metric,
            threshold=args.threshold,
            alpha=args.alpha,
            fmt=args.format,
            fail_on_regression=args.fail_on_regression,
            allow_env_mismatch=args.allow_env_mismatch,
        )
    except CompareError as exc:
        raise UsageError(str(exc)) from None


def _cmd_regress(args: argparse.Namespace) -> int:
    from .gate.compare import CompareError
    from .gate.regress import RegressError, regress

    try:
        return regress(
            base_ref=args.base,
            spec_path=args.spec,
            out=args.out,
            threshold=args.threshold,
            alpha=args.alpha,
            metrics=args.metric,
            repetitions=args.repetitions,
            budget_min=args.budget,
            max_repetitions=args.max_repetitions,
            filter_expr=args.filter,
            fail_on_regression=args.fail_on_regression,
            base_env=args.base_env,
        )
    except (CompareError, RegressError) as exc:
        raise UsageError(str(exc)) from None


# -- Kubernetes LoadTests (issue 17): grpclab scenarios, grpclab loadtest, grpclab merge ------------------------


def _cmd_scenarios(args: argparse.Namespace) -> int:
    from .remote.scenarios import ScenarioError, main

    try:
        return main(args.spec, args.out, args.clients, args.filter)
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None


def _cmd_loadtest(args: argparse.Namespace) -> int:
    from .remote import loadtest

    modes = [
        flag for flag, given in (("SPEC", args.spec), ("--local", args.local), ("--collect", args.collect)) if given
    ]
    if len(modes) != 1:
        raise UsageError("give one of SPEC (write manifests), --local DIR (run them here) or --collect LOG...")
    if args.out is None:
        raise UsageError("--out: required")
    try:
        if args.local is not None:
            from .remote.local_pods import main as run_local

            return run_local(args.local, args.out)
        if args.collect:
            for log in args.collect:
                try:
                    text = log.read_text(errors="replace")
                except OSError as exc:
                    raise UsageError(f"--collect: {log}: {exc.strerror or exc}") from None
                for run_dir in loadtest.collect(text, args.out, where=str(log)):
                    print(run_dir)
            return 0
        from .spec import SpecError, filter_cells, load_spec

        spec = load_spec(args.spec)
        cells = filter_cells(spec.cells, args.filter) if args.filter else spec.cells
        if not cells:
            raise SpecError(f"--filter: {args.filter!r} selects no cell of {spec.name}")
        paths, left_out = loadtest.write(
            spec,
            cells,
            args.out,
            image=args.image,
            count=args.shards,
            num_clients=args.clients,
            pool=args.pool,
            driver_pool=args.driver_pool,
        )
    except loadtest.LoadTestError as exc:
        raise UsageError(str(exc)) from None
    for line in left_out:
        print(f"left out {line}", file=sys.stderr)
    print(f"{len(paths)} LoadTests in {args.out} ({len(left_out)} cells left out): kubectl apply -f {args.out}")
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    from .run.merge import main

    return main(args.shard_dirs, args.out)


def _cpu_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CPU ids like 0 or 2,3, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    from servers.config import COMPRESSIONS, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_WORKERS, IMPLS, SERVER_PRESETS_TEXT

    parser = _Parser(prog="grpclab", description="gRPC Python performance lab")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run a lab server (the tutorial's four services)")
    serve.add_argument("--impl", choices=IMPLS, default="sync", help="server model (default sync)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=50051, help="port; 0 picks a free one (default 50051)")
    serve.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="sync thread pool size")
    serve.add_argument("--processes", type=int, default=1, help="server processes sharing the port")
    serve.add_argument("--tls", type=Path, metavar="DIR", help="serve TLS with DIR/server.crt and server.key")
    serve.add_argument("--mtls", action="store_true", help="also require client certificates signed by DIR/ca.crt")
    serve.add_argument(
        "--compression", choices=list(COMPRESSIONS), default="none", help="server default response compression"
    )
    serve.add_argument("--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES)
    serve.add_argument("--max-concurrent-rpcs", type=int, default=None)
    serve.add_argument("--grace", type=float, default=2.0, help="seconds to finish open RPCs on SIGTERM")
    serve.add_argument("--uvloop", action="store_true", help="aio only: run on uvloop")
    serve.add_argument(
        "--options",
        default="default",
        metavar="PRESET",
        help=f"gRPC server options preset: {SERVER_PRESETS_TEXT} (servers/config.py)",
    )
    serve.add_argument(
        "--benchmark-service",
        action="store_true",
        help="also serve grpc.testing.BenchmarkService (gRPC's benchmark service; the lab's worker uses it)",
    )
    serve.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when the process that started this one dies (the harness uses it)",
    )
    serve.set_defaults(func=_cmd_serve)

    worker = sub.add_parser("worker", help="serve gRPC's benchmark WorkerService: run the lab's servers and generator")
    worker.add_argument("--driver-port", help="port the driver connects to (default $DRIVER_PORT; 0: a free one)")
    worker.add_argument("--host", default="127.0.0.1", help="address to bind, also the servers' (default 127.0.0.1)")
    worker.add_argument("--certs", type=Path, metavar="DIR", help="certificates for TLS cells (grpclab certs DIR)")
    worker.add_argument("--exit-with-parent", action="store_true", help="stop when the process that started it dies")
    worker.set_defaults(func=_cmd_worker)

    certs = sub.add_parser("certs", help="generate a CA, server and client certificates")
    certs.add_argument("dir", type=Path)
    certs.add_argument("--days", type=int, default=30)
    certs.add_argument("--force", action="store_true", help="regenerate even if a complete set exists")
    certs.set_defaults(func=_cmd_certs)

    call = sub.add_parser("call", help="make the tutorial's four client calls")
    call.add_argument("--target", default="127.0.0.1:50051", help="HOST:PORT (default 127.0.0.1:50051)")
    call.add_argument("--tls", type=Path, metavar="DIR", help="trust DIR/ca.crt (and present DIR/client.crt)")
    call.add_argument("--compression", choices=list(COMPRESSIONS), default="none")
    call.add_argument("--timeout", type=float, default=10.0, help="deadline per call, seconds")
    call.set_defaults(func=_cmd_call)

    run = sub.add_parser("run", help="run a benchmark spec (default: the quick matrix)")
    run.add_argument(
        "spec",
        nargs="?",
        default="bench/specs/quick.toml",
        help="spec file or built-in name (default bench/specs/quick.toml)",
    )
    run.add_argument("--out", type=Path, help="run directory (default results/<time>-<spec name>)")
    run.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a run: only missing repetitions")
    run.add_argument("--filter", metavar="EXPR", help="only cells matching, e.g. impl=aio,rpc=unary|bidi")
    run.add_argument("--duration", type=float, help="override settings.duration (seconds)")
    run.add_argument("--repetitions", type=int, help="override settings.repetitions")
    run.add_argument("--server-cpus", type=_cpu_list, help="override settings.server_cpus, e.g. 0")
    run.add_argument("--loadgen-cpus", type=_cpu_list, help="override settings.loadgen_cpus, e.g. 1")
    run.add_argument(
        "--cpu-latency-hold",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="override settings.cpu_latency_hold: hold /dev/cpu_dma_latency at 0 while measuring (default: on)",
    )
    run.add_argument(
        "--calibrate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="override settings.calibrate: measure the machine's floor and noise first (default: on)",
    )
    run.add_argument(
        "--hosts",
        metavar="LIST|@FILE",
        help="drive the cells over gRPC benchmark workers: HOST:PORT,HOST:PORT[,...], the first the server worker, "
        "the rest client workers (QPS_WORKERS style), or @FILE with the same list; overrides the spec's [hosts]",
    )
    run.set_defaults(func=_cmd_run)

    report = sub.add_parser("report", help="write RUN_DIR/report/index.html: figures, summary table, manifest")
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory, e.g. results/<run-id>")
    report.add_argument("--out", type=Path, metavar="DIR", help="write here instead of RUN_DIR/report")
    report.set_defaults(func=_cmd_report)

    compare_metrics = "rps,lat_p50_ms,lat_p99_ms,server_cpu_us_per_rpc"  # compare.DEFAULT_METRICS
    gate_metrics = "rps,lat_p50_ms,server_cpu_us_per_rpc"  # compare.GATE_METRICS (tests check both)
    compare = sub.add_parser("compare", help="did HEAD_RUN get better or worse than BASE_RUN? (per cell and metric)")
    compare.add_argument("base_run", type=Path, metavar="BASE_RUN", help="run directory of the base")
    compare.add_argument("head_run", type=Path, metavar="HEAD_RUN", help="run directory of the head")
    compare.add_argument("--metric", default=compare_metrics, help=f"comma-separated (default {compare_metrics})")
    compare.add_argument("--threshold", type=float, default=0.05, help="smallest change that counts (default 0.05)")
    compare.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    compare.add_argument("--format", choices=["table", "markdown", "json"], default="table")
    compare.add_argument("--fail-on-regression", action="store_true", help="exit 1 when a cell got significantly worse")
    compare.add_argument(
        "--allow-env-mismatch", action="store_true", help="compare runs from different environments anyway"
    )
    compare.set_defaults(func=_cmd_compare)

    scenarios = sub.add_parser(
        "scenarios", help="a spec's cells as grpc.testing.Scenarios JSON (gRPC's qps_json_driver)"
    )
    scenarios.add_argument("spec", help="spec file or built-in name, e.g. quick")
    scenarios.add_argument("--out", type=Path, metavar="FILE", help="write here instead of stdout")
    scenarios.add_argument("--filter", metavar="EXPR", help="only cells matching, e.g. rpc=unary")
    scenarios.add_argument("--clients", type=int, default=1, help="num_clients of every scenario (default 1)")
    scenarios.set_defaults(func=_cmd_scenarios)

    loadtest = sub.add_parser("loadtest", help="grpc/test-infra LoadTest manifests of a spec; --local runs them here")
    loadtest.add_argument("spec", nargs="?", help="spec file or built-in name: write its LoadTests to --out")
    loadtest.add_argument(
        "--out", type=Path, metavar="DIR", help="the manifests' (or, with --local/--collect, the results') directory"
    )
    loadtest.add_argument(
        "--image", default="grpclab:latest", help="the lab's image (deploy/Containerfile), e.g. REGISTRY/grpclab:TAG"
    )
    loadtest.add_argument("--shards", type=int, default=1, help="LoadTests to deal the cells into (default 1)")
    loadtest.add_argument("--clients", type=int, default=1, help="client worker pods per LoadTest (default 1)")
    loadtest.add_argument("--filter", metavar="EXPR", help="only cells matching, e.g. rpc=unary")
    loadtest.add_argument("--pool", help="node pool of the worker pods (also the runner's queue annotation)")
    loadtest.add_argument("--driver-pool", help="node pool of the driver pod")
    loadtest.add_argument(
        "--local", type=Path, metavar="DIR", help="run DIR's LoadTests here, a network namespace per pod"
    )
    loadtest.add_argument(
        "--collect", type=Path, nargs="+", metavar="LOG", help="unpack the run directories in driver logs"
    )
    loadtest.set_defaults(func=_cmd_loadtest)

    merge = sub.add_parser("merge", help="join the run directories of shards into one run directory")
    merge.add_argument("shard_dirs", type=Path, nargs="+", metavar="SHARD_DIR", help="run directories of the shards")
    merge.add_argument("--out", type=Path, required=True, metavar="RUN_DIR", help="the merged run directory (new)")
    merge.set_defaults(func=_cmd_merge)

    regress = sub.add_parser("regress", help="CI gate: this checkout's servers vs a base commit's, interleaved")
    regress.add_argument("--base", required=True, metavar="GIT_REF", help="base commit, e.g. origin/main")
    regress.add_argument("--spec", default="bench/specs/ci.toml", help="spec (default bench/specs/ci.toml)")
    regress.add_argument("--out", type=Path, metavar="DIR", help="default results/regress-<time>")
    regress.add_argument("--metric", default=gate_metrics, help=f"comma-separated (default {gate_metrics})")
    regress.add_argument("--threshold", type=float, default=0.05, help="smallest change that counts (default 0.05)")
    regress.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    regress.add_argument(
        "--repetitions", type=int, help="first round's repetitions per side and cell (default: the spec's)"
    )
    regress.add_argument(
        "--budget",
        type=float,
        default=8.0,
        metavar="MINUTES",
        help="measuring time for all rounds; underpowered cells get more repetitions until it is spent (default 8)",
    )
    regress.add_argument(
        "--max-repetitions",
        type=int,
        default=40,
        metavar="N",
        help="cap per side and cell (default 40; equal to --repetitions: a fixed number, no adaptive rounds)",
    )
    regress.add_argument("--filter", metavar="EXPR", help="only cells matching, e.g. impl=aio,rpc=unary")
    regress.add_argument("--fail-on-regression", action="store_true", help="exit 1 when a cell got significantly worse")
    regress.add_argument(
        "--base-env",
        choices=["auto", "own", "shared"],
        default="auto",
        help="base server's packages: its own venv from its pins (own), this one (shared), own if pins differ (auto)",
    )
    regress.set_defaults(func=_cmd_regress)

    doctor = sub.add_parser("doctor", help="versions of Python, grpcio, protobuf, ghz, Go; what is missing")
    doctor.set_defaults(func=_cmd_doctor)

    system = sub.add_parser("system", help="the machine's state that changes results (cpuidle, steal, load...)")
    system.add_argument("--json", action="store_true", help="print JSON (what a run's manifest records)")
    system.add_argument("--wakeup", action="store_true", help="also measure what waking an idle CPU costs (~1 s)")
    system.set_defaults(func=_cmd_system)
    system_sub = system.add_subparsers(dest="system_command", metavar="tune")
    tune = system_sub.add_parser("tune", help="hold /dev/cpu_dma_latency (idle CPUs poll) until Ctrl-C or SIGTERM")
    tune.add_argument("--us", type=int, default=0, help="the CPU latency request, microseconds (default 0)")
    tune.add_argument("--seconds", type=float, help="release after this long instead of waiting for a signal")
    tune.set_defaults(func=_cmd_system_tune)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except _user_errors() as exc:
        print(f"grpclab {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # stdout closed early (e.g. piped into head): not an error worth a traceback
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"grpclab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
