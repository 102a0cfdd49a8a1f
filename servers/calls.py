"""How many RPCs this process's gRPC server finished, from gRPC core's own counters (channelz).

gRPC core counts every call per server whether or not anyone asks (channelz is on by default): calls
started, succeeded and failed. Reading those costs nothing per RPC in Python, where a counter updated
from a per-RPC termination callback under a lock cost a few microseconds of every RPC (issue 19).

Read in-process through grpcio-channelz's public servicer, called directly (no RPC, no service added).
"Finished" is succeeded + failed: every service (health and reflection included) and every status,
cancellations and deadlines included; a call still running is not finished yet.
"""

from __future__ import annotations

from grpc_channelz.v1 import channelz, channelz_pb2


class ChannelzError(RuntimeError):
    """channelz could not be read (the message says why)."""


class _Context:
    """What the servicer needs of a ServicerContext to report an error."""

    def __init__(self) -> None:
        self.code = None
        self.details = ""

    def set_code(self, code) -> None:
        self.code = code

    def set_details(self, details: str) -> None:
        self.details = details


def finished_calls() -> int:
    """Calls succeeded + failed, summed over every gRPC server of this process."""
    total, start = 0, 0
    while True:
        context = _Context()
        reply = channelz.ChannelzServicer.GetServers(channelz_pb2.GetServersRequest(start_server_id=start), context)
        if reply is None:
            raise ChannelzError(f"channelz GetServers failed: {context.code}: {context.details}")
        for server in reply.server:
            total += server.data.calls_succeeded + server.data.calls_failed
            start = max(start, server.ref.server_id + 1)
        if reply.end or not reply.server:
            return total
