"""ghz (github.com/bojand/ghz, Go) as the lab's second load generator: a subprocess wrapper.

``GhzLoad`` has PythonLoad's interface (``start()`` -> measured window, ``result()`` ->
:class:`~bench.load.python_load.LoadResult`, ``close()``), so the runner treats both alike.

How a cell maps onto one ghz run (no shell; the placement pins it like the Python workers):

* the method comes from the repo's .proto files (``--proto``/``--import-paths``), not server
  reflection; the request is one pre-serialized message in a ``-B`` file (count-delimited, so
  ghz never has to guess its framing), built with the lab's protos and payloads;
* client and bidi streams send that message ``stream_messages`` times (``--stream-call-count``;
  ghz repeats a one-message data set); server streams ask for ``limit`` replies in the
  request, as the Python client does (``--stream-call-count`` would cancel the call instead);
* warm-up: one run, ``-z LEAD + warmup + duration + TAIL``. Every RPC ghz reports carries
  its end time (wall clock) and latency, so its start is known; the RPCs that *started* in
  the measured window count, which is the Python generator's rule. ``--skipFirst`` is not
  used: it skips a number of RPCs, not a time. ``--duration-stop wait`` lets the RPCs in
  flight at the end finish instead of failing them. TAIL keeps ghz's connections open past
  the window's end, where the runner reads the server's TCP counters;
* ghz's CPU is read from /proc (psutil) at the window's edges, as the workers do for themselves.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
from google.protobuf.internal.encoder import _VarintBytes
from hdrh.histogram import HdrHistogram

import protos
from protos import chat_pb2, greet_pb2, number_stream_pb2, sum_stream_pb2
from servers.config import KEEPALIVE_TIME_MS

from . import histogram
from .job import LoadError, LoadJob, LoadResult
from .workload import Workload

if TYPE_CHECKING:
    from ..run.placement import LoadgenHost

GHZ_VERSION = "v0.121.0"  # what `make ghz` builds (Makefile GHZ_VERSION)
PROTOS_DIR = Path(protos.__file__).resolve().parent
LEAD_S = 0.2  # launch -> warm-up start: ghz's own start-up (~40 ms: Go runtime, .proto parsing) fits in it
TAIL_S = 0.25  # ghz keeps loading this long after the window, so its connections outlive the runner's sampling
EXIT_MARGIN_S = 15.0  # after the last RPC's deadline: time for ghz to write its report before it is killed
NS = 1_000_000_000

# rpc -> (.proto file, ghz --call, request message class)
CALLS = {
    "unary": ("greet.proto", "greet.Greeter.SayHello", greet_pb2.HelloRequest),
    "server_stream": ("number_stream.proto", "number_stream.NumberService.GetNumbers", number_stream_pb2.NumberRequest),
    "client_stream": ("sum_stream.proto", "sum_stream.SumService.CalculateSum", sum_stream_pb2.NumberRequest),
    "bidi": ("chat.proto", "chat.ChatService.Chat", chat_pb2.ChatRequest),
}

# grpc-go's codes.Code.String() -> the grpc.StatusCode names the Python generator records.
_GO_CODES = {
    "OK": "OK",
    "Canceled": "CANCELLED",
    "Unknown": "UNKNOWN",
    "InvalidArgument": "INVALID_ARGUMENT",
    "DeadlineExceeded": "DEADLINE_EXCEEDED",
    "NotFound": "NOT_FOUND",
    "AlreadyExists": "ALREADY_EXISTS",
    "PermissionDenied": "PERMISSION_DENIED",
    "ResourceExhausted": "RESOURCE_EXHAUSTED",
    "FailedPrecondition": "FAILED_PRECONDITION",
    "Aborted": "ABORTED",
    "OutOfRange": "OUT_OF_RANGE",
    "Unimplemented": "UNIMPLEMENTED",
    "Internal": "INTERNAL",
    "Unavailable": "UNAVAILABLE",
    "DataLoss": "DATA_LOSS",
    "Unauthenticated": "UNAUTHENTICATED",
}

NOTE_PER_CALL = "ghz: per-call latency only (no per-message, first-message or send-lag histograms)"
NOTE_OPEN = "ghz open loop: latency from the actual send, not coordinated-omission corrected"
NOTE_POISSON = "ghz paces at a constant rate: arrival=poisson ran as constant"
NOTE_APP_GZIP = "ghz: app-gzip request payload pre-compressed once, so no client gzip CPU per message"
NOTE_BIDI = "ghz bidi: all messages sent without waiting for replies (not ping-pong)"


def find_ghz() -> str | None:
    """ghz next to this interpreter (.venv/bin, where `make ghz` puts it), else on PATH."""
    here = Path(sys.executable).parent / "ghz"  # not resolved: sys.executable is .venv/bin/python
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    return shutil.which("ghz")


def ghz_version(binary: str | None = None) -> str | None:
    """``ghz --version``; for a build that says "dev" (go install without -ldflags), the module version."""
    binary = binary or find_ghz()
    if binary is None:
        return None
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
        version = (out.stdout or out.stderr).strip().splitlines()[0] if out.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, IndexError):
        version = None
    if version in (None, "dev"):
        version = _module_version(binary) or version
    return version


_MODULE = b"\tgithub.com/bojand/ghz\t"


def _module_version(binary: str) -> str | None:
    # Go embeds its build info as text: "mod\tgithub.com/bojand/ghz\tv0.121.0\th1:..."
    try:
        with open(binary, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            at = data.find(_MODULE)
            if at < 0:
                return None
            at += len(_MODULE)
            end = data.find(b"\t", at, at + 100)
            return data[at:end].decode() if end > 0 else None
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def check_job(job: LoadJob) -> None:
    """Raise LoadError for cells ghz cannot run as specified."""
    if job.rpc not in CALLS:
        raise LoadError(f"ghz: unknown rpc {job.rpc!r}")
    if job.compression.ghz_flags() is None:
        raise LoadError("ghz cannot send grpc-deflate (its -e compresses with gzip only): use loadgen = python")
    if job.connections > job.concurrency:
        raise LoadError(
            f"ghz needs connections <= concurrency (got {job.connections} > {job.concurrency}): "
            "it gives every connection at least one worker"
        )
    if job.mode == "open" and round(job.rate) < 1:
        raise LoadError(f"ghz --rps takes whole RPCs per second >= 1, got rate {job.rate:g}")


def request_message(job: LoadJob):
    """The one request message every ghz call sends, with the lab's fields (the Python generator's own)."""
    _, _, cls = CALLS[job.rpc]
    fields = Workload.for_job(job).request_fields()
    if job.rpc == "unary":
        return cls(name="lab", **fields)
    if job.rpc == "server_stream":
        return cls(limit=job.stream_messages, **fields)
    if job.rpc == "client_stream":
        return cls(number=1, **fields)  # the same message N times: the server's sum is N
    return cls(message="0", **fields)


def request_bytes(job: LoadJob) -> bytes:
    """The -B file: the request as one count-delimited (varint length-prefixed) message."""
    body = request_message(job).SerializeToString()
    return _VarintBytes(len(body)) + body


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def ghz_args(job: LoadJob, *, data_file: str, output: str, run_s: float, cpus: int | None = None) -> list[str]:
    """ghz's arguments (after the binary) for one cell; ``run_s`` is -z, the whole run."""
    proto, call, _ = CALLS[job.rpc]
    args = [
        "--proto",
        str(PROTOS_DIR / proto),
        "--import-paths",
        str(PROTOS_DIR),
        "--call",
        call,
        "-B",
        data_file,
        "-c",
        str(job.concurrency),
        "--connections",
        str(job.connections),
        "-z",
        _ms(run_s),
        "--duration-stop",
        "wait",
        "--timeout",
        _ms(job.rpc_timeout),
        "--disable-template-functions",
        "--disable-template-data",
        "-O",
        "json",
        "-o",
        output,
    ]
    if cpus:
        args += ["--cpus", str(cpus)]
    if job.mode == "open":
        args += ["--rps", str(round(job.rate))]
    if job.rpc in ("client_stream", "bidi"):
        args += ["--stream-call-count", str(job.stream_messages)]
    args += job.compression.ghz_flags() or []
    if job.channel_options == "keepalive":
        # ghz has a flag for the keepalive time only (grpc-go's ClientParameters.Time); the row says so
        args += ["--keepalive", _ms(KEEPALIVE_TIME_MS / 1000)]
    tls_dir = job.tls_dir
    if job.tls == "off" or not tls_dir:
        args.append("--insecure")
    else:
        args += ["--cacert", str(Path(tls_dir) / "ca.crt"), "--cname", "localhost"]
        if job.tls == "mtls":
            args += ["--cert", str(Path(tls_dir) / "client.crt"), "--key", str(Path(tls_dir) / "client.key")]
    args.append(job.target)
    return args


def job_notes(job: LoadJob) -> list[str]:
    notes = [NOTE_PER_CALL]
    if job.mode == "open":
        notes.append(NOTE_OPEN)
        if job.arrival == "poisson":
            notes.append(NOTE_POISSON)
        if round(job.rate) != job.rate:
            notes.append(f"ghz --rps is whole RPCs per second: rate {job.rate:g} ran as {round(job.rate)}")
    if job.rpc == "bidi":
        notes.append(NOTE_BIDI)
    if job.compression.is_app_gzip:
        notes.append(NOTE_APP_GZIP)
    return notes


# --- the report --------------------------------------------------------------------------------------

_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")


def wall_ns(text: str, cache: dict | None = None) -> int:
    """A Go RFC 3339 timestamp (ns precision, any zone) -> ns since the epoch."""
    m = _TIMESTAMP.fullmatch(text)
    if m is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    base, fraction, zone = m.groups()
    key = (base, zone)
    seconds = cache.get(key) if cache is not None else None
    if seconds is None:
        seconds = int(datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone)).timestamp())
        if cache is not None:
            cache[key] = seconds
    return seconds * NS + int((fraction or "0").ljust(9, "0"))


def status_name(go_status: str) -> str:
    """'Unavailable' -> 'UNAVAILABLE' (grpc.StatusCode names); '' (no gRPC status) -> 'UNKNOWN'."""
    if not go_status:
        return "UNKNOWN"
    return _GO_CODES.get(go_status) or re.sub(r"(?<!^)(?=[A-Z])", "_", go_status).upper()


def parse_report(report: dict, window_ns: tuple[int, int], duration_s: float) -> tuple[int, dict, HdrHistogram, list]:
    """(ok, errors by code, call-latency histogram in us, notes) of the RPCs started in ``window_ns``.

    ``window_ns`` is in wall-clock ns (ghz's timestamps). Without ghz's per-request details
    (it keeps at most 1,000,000), the whole run's counts are scaled to the window and the
    histogram is rebuilt from ghz's percentiles.
    """
    try:
        count = int(report["count"])
        details = report.get("details") or []
        if len(details) == count:
            return _from_details(details, window_ns)
        return _from_summary(report, count, len(details), duration_s)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise LoadError(f"ghz report has an unexpected shape: {type(exc).__name__}: {exc}") from None


def _from_details(details: list, window_ns: tuple[int, int]) -> tuple[int, dict, HdrHistogram, list]:
    lo, hi = window_ns
    hist = histogram.new()
    errors: dict[str, int] = {}
    ok = 0
    cache: dict = {}
    for d in details:
        latency = int(d["latency"])
        started = wall_ns(d["timestamp"], cache) - latency  # ghz stamps an RPC's end
        if not lo <= started < hi:
            continue
        if d["status"] == "OK" and not d.get("error"):
            ok += 1
            histogram.record_ns(hist, latency)
        else:
            code = status_name(d["status"])
            errors[code] = errors.get(code, 0) + 1
    return ok, errors, hist, []


def _from_summary(report: dict, count: int, kept: int, duration_s: float) -> tuple[int, dict, HdrHistogram, list]:
    run_s = int(report["total"]) / NS
    scale = min(1.0, duration_s / run_s) if run_s > 0 else 0.0
    ok = 0
    errors: dict[str, int] = {}
    for status, n in (report.get("statusCodeDistribution") or {}).items():
        if status == "OK":
            ok = round(int(n) * scale)
        else:
            code = status_name(status)
            errors[code] = errors.get(code, 0) + round(int(n) * scale)
    hist = histogram.new()
    points = sorted(
        (int(p["percentage"]), int(p["latency"]))
        for p in report.get("latencyDistribution") or []
        if int(p["percentage"]) > 0 and int(p["latency"]) > 0
    )
    if ok and points:
        # Each percentile's latency stands for the RPCs between it and the previous one; the top
        # band is recorded at ghz's slowest OK latency, so p99.9 and max are that value.
        slowest = int(report.get("slowest") or points[-1][1])
        bands = [*points, (100, max(slowest, points[-1][1]))]
        recorded, previous = 0, 0
        for i, (percent, latency_ns) in enumerate(bands):
            n = ok - recorded if i == len(bands) - 1 else round(ok * (percent - previous) / 100)
            if n > 0:
                hist.record_value(min(max(latency_ns // 1000, histogram.LOWEST_US), histogram.HIGHEST_US), n)
                recorded += n
            previous = percent
    what = "no per-request details" if kept == 0 else f"per-request details for only {kept} of {count} RPCs"
    notes = [
        f"ghz gave {what}: counts are whole-run totals scaled to the window (warm-up included); "
        "latency histogram rebuilt from ghz's percentiles (p10..p99); p99.9 unavailable"
    ]
    return ok, errors, hist, notes


# --- the process -------------------------------------------------------------------------------------


def _wall_minus_monotonic_ns() -> int:
    """CLOCK_REALTIME - CLOCK_MONOTONIC now, from the tightest of a few paired reads."""
    best = None
    for _ in range(5):
        a = time.monotonic_ns()
        wall = time.time_ns()
        b = time.monotonic_ns()
        if best is None or b - a < best[0]:
            best = (b - a, wall - (a + b) // 2)
    return best[1]


def _cpu_seconds(proc: psutil.Process) -> float | None:
    try:
        t = proc.cpu_times()
    except (psutil.Error, OSError):
        return None
    return t.user + t.system


class GhzLoad:
    """One cell's load from ghz: ``start()`` returns the measured window; ``result()`` waits for ghz's report."""

    def __init__(self, job: LoadJob, host: LoadgenHost, binary: str | None = None) -> None:
        self.job = job
        self.host = host
        self.binary = binary or find_ghz()
        if self.binary is None:
            raise LoadError("ghz not found: run `make ghz` (needs Go) or put ghz on PATH")
        check_job(job)
        self.run_s = LEAD_S + job.warmup + job.duration + TAIL_S
        self.proc: subprocess.Popen | None = None
        self.window: tuple[float, float] | None = None
        self._dir: str | None = None
        self._report = self._log = ""
        self._launched = 0.0
        self._offset_ns = 0
        self._cpu: list[float | None] = [None, None]
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    def command(self, data_file: str, output: str) -> list[str]:
        cpus = len(self.host.cpus) or None  # --cpus sets GOMAXPROCS to the CPUs ghz is pinned to
        return [self.binary, *ghz_args(self.job, data_file=data_file, output=output, run_s=self.run_s, cpus=cpus)]

    def start(self) -> tuple[float, float]:
        self._dir = tempfile.mkdtemp(prefix="grpclab-ghz-")
        data_file = os.path.join(self._dir, "request.bin")
        self._report = os.path.join(self._dir, "report.json")
        self._log = os.path.join(self._dir, "ghz.log")
        with open(data_file, "wb") as f:
            f.write(request_bytes(self.job))
        command = self.command(data_file, self._report)
        self._offset_ns = _wall_minus_monotonic_ns()
        self._launched = time.monotonic()  # before the launch: ghz's -z clock starts later, so it runs past hi
        with open(self._log, "wb") as log:
            try:
                self.proc = self.host.launch(
                    command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self._dir
                )
            except OSError as exc:
                raise LoadError(f"ghz did not start: {exc}") from None
        lo = self._launched + LEAD_S + self.job.warmup
        self.window = (lo, lo + self.job.duration)
        self._sampler = threading.Thread(target=self._sample_cpu, name="ghz-cpu", daemon=True)
        self._sampler.start()
        return self.window

    def _sample_cpu(self) -> None:
        assert self.proc is not None and self.window is not None
        try:
            proc = psutil.Process(self.proc.pid)
        except psutil.Error:
            return
        for i, moment in enumerate(self.window):
            if self._stop.wait(max(0.0, moment - time.monotonic())):
                return
            self._cpu[i] = _cpu_seconds(proc)

    def result(self) -> LoadResult:
        assert self.proc is not None and self.window is not None
        limit = self.run_s + self.job.rpc_timeout + EXIT_MARGIN_S
        try:
            code = self.proc.wait(timeout=max(0.0, self._launched + limit - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise LoadError(f"ghz did not finish within {limit:.1f} s and was killed") from None
        self._stop.set()  # ghz is gone: a sample not yet taken (it exited early) cannot be taken any more
        if self._sampler is not None:
            self._sampler.join(timeout=5.0)
        if code != 0:
            raise LoadError(f"ghz exited with code {code}: {self._log_tail()}")
        try:
            with open(self._report, encoding="utf-8") as f:
                report = json.load(f)
        except FileNotFoundError:
            raise LoadError(f"ghz wrote no report: {self._log_tail()}") from None
        except (OSError, ValueError) as exc:
            raise LoadError(f"ghz report is not valid JSON: {exc}") from None
        if not isinstance(report, dict):
            raise LoadError("ghz report is not valid JSON: not an object")
        lo, hi = self.window
        window_ns = (int(lo * NS) + self._offset_ns, int(hi * NS) + self._offset_ns)
        ok, errors, hist, notes = parse_report(report, window_ns, self.job.duration)
        cpu_lo, cpu_hi = self._cpu
        if cpu_lo is None or cpu_hi is None:
            cpu_s = math.nan
            notes.append("ghz CPU unavailable (its process could not be read at the window's edges)")
        else:
            cpu_s = cpu_hi - cpu_lo
        job = self.job
        return LoadResult(
            loadgen="ghz",
            processes=1,
            window_s=job.duration,
            ok=ok,
            errors=errors,
            cpu_s=cpu_s,
            hists={"call": hist, "msg": histogram.new(), "first": histogram.new(), "lag": histogram.new()},
            notes=job_notes(job) + notes,
        )

    def _log_tail(self) -> str:
        try:
            with open(self._log, errors="replace") as f:
                lines = [line.strip() for line in f.read().strip().splitlines() if line.strip()]
        except OSError:
            lines = []
        return lines[-1][:300] if lines else "(no output)"

    def close(self) -> None:
        """Kill ghz if it still runs (failure or Ctrl-C) and remove its files."""
        self._stop.set()
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
        if self._sampler is not None:
            self._sampler.join(timeout=5.0)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
