"""The studies, in the order findings are given: each with its title and the axes it compares cells along.

One place for what a study is: ``compute`` runs them in this order, the renderers take their titles from here, and
the test that every study of the quick matrix has a finding (tests/test_findings_coverage.py) reads ``axes`` to
know which study answers an [[include]] of bench/specs/quick.toml. A new study is a function Run -> findings in a
module of this package, and a line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .clients import channel, client, event_loop, options
from .engine import Finding, Run
from .load import load_generator, open_loop_knee
from .payloads import compression, payload_kind, payload_size
from .servers import go_reference, processes, server_model, thread_pool
from .tls import tls
from .workload import arrival, concurrency, connections, handler_work, rpc, service, stream_messages


@dataclass(frozen=True)
class Study:
    name: str  # Finding.study
    title: str  # how a report names it
    axes: tuple[str, ...]  # the axes whose values it compares (bench.spec.AXES)
    find: Callable[[Run], list[Finding]]  # every finding of this study a run's cells support, leading one first


REGISTRY: tuple[Study, ...] = (
    Study("server_model", "Server model", ("impl",), server_model),
    Study("thread_pool", "Thread pool", ("workers",), thread_pool),
    Study("processes", "Server processes", ("processes",), processes),
    Study("handler_work", "Handler work", ("handler_wait_ms", "handler_block_ms", "handler_cpu_us"), handler_work),
    Study("payload_size", "Payload size", ("payload_size",), payload_size),
    Study("payload_kind", "Payload kind", ("payload_kind",), payload_kind),
    Study("compression", "Compression", ("compression",), compression),
    Study("tls", "TLS", ("tls",), tls),
    Study("rpc", "RPC kind", ("rpc",), rpc),
    Study("stream_messages", "Stream length", ("stream_messages",), stream_messages),
    Study("concurrency", "RPCs in flight", ("concurrency",), concurrency),
    Study("connections", "Connections", ("connections",), connections),
    Study("open_loop_knee", "Open-loop knee", ("mode", "rate"), open_loop_knee),
    Study("arrival", "Open-loop arrivals", ("arrival",), arrival),
    Study("client", "Client model", ("client",), client),
    Study("channel", "Channel per call", ("channel",), channel),
    Study("event_loop", "Event loop", ("event_loop",), event_loop),
    Study("options", "Options preset", ("server_options", "channel_options"), options),
    Study("service", "BenchmarkService", ("service",), service),
    Study("load_generator", "Load generator", ("loadgen",), load_generator),
    Study("go_reference", "Go reference", ("impl",), go_reference),
)
STUDIES: tuple[str, ...] = tuple(study.name for study in REGISTRY)
STUDY_FUNCTIONS: tuple[Callable[[Run], list[Finding]], ...] = tuple(study.find for study in REGISTRY)
TITLES: dict[str, str] = {study.name: study.title for study in REGISTRY}
