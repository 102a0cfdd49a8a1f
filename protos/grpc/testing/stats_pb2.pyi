from ..core import stats_pb2 as _stats_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ServerStats(_message.Message):
    __slots__ = ("time_elapsed", "time_user", "time_system", "total_cpu_time", "idle_cpu_time", "cq_poll_count", "core_stats")
    TIME_ELAPSED_FIELD_NUMBER: _ClassVar[int]
    TIME_USER_FIELD_NUMBER: _ClassVar[int]
    TIME_SYSTEM_FIELD_NUMBER: _ClassVar[int]
    TOTAL_CPU_TIME_FIELD_NUMBER: _ClassVar[int]
    IDLE_CPU_TIME_FIELD_NUMBER: _ClassVar[int]
    CQ_POLL_COUNT_FIELD_NUMBER: _ClassVar[int]
    CORE_STATS_FIELD_NUMBER: _ClassVar[int]
    time_elapsed: float
    time_user: float
    time_system: float
    total_cpu_time: int
    idle_cpu_time: int
    cq_poll_count: int
    core_stats: _stats_pb2.Stats
    def __init__(self, time_elapsed: _Optional[float] = ..., time_user: _Optional[float] = ..., time_system: _Optional[float] = ..., total_cpu_time: _Optional[int] = ..., idle_cpu_time: _Optional[int] = ..., cq_poll_count: _Optional[int] = ..., core_stats: _Optional[_Union[_stats_pb2.Stats, _Mapping]] = ...) -> None: ...

class HistogramParams(_message.Message):
    __slots__ = ("resolution", "max_possible")
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    MAX_POSSIBLE_FIELD_NUMBER: _ClassVar[int]
    resolution: float
    max_possible: float
    def __init__(self, resolution: _Optional[float] = ..., max_possible: _Optional[float] = ...) -> None: ...

class HistogramData(_message.Message):
    __slots__ = ("bucket", "min_seen", "max_seen", "sum", "sum_of_squares", "count")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    MIN_SEEN_FIELD_NUMBER: _ClassVar[int]
    MAX_SEEN_FIELD_NUMBER: _ClassVar[int]
    SUM_FIELD_NUMBER: _ClassVar[int]
    SUM_OF_SQUARES_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    bucket: _containers.RepeatedScalarFieldContainer[int]
    min_seen: float
    max_seen: float
    sum: float
    sum_of_squares: float
    count: float
    def __init__(self, bucket: _Optional[_Iterable[int]] = ..., min_seen: _Optional[float] = ..., max_seen: _Optional[float] = ..., sum: _Optional[float] = ..., sum_of_squares: _Optional[float] = ..., count: _Optional[float] = ...) -> None: ...

class RequestResultCount(_message.Message):
    __slots__ = ("status_code", "count")
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    status_code: int
    count: int
    def __init__(self, status_code: _Optional[int] = ..., count: _Optional[int] = ...) -> None: ...

class ClientStats(_message.Message):
    __slots__ = ("latencies", "time_elapsed", "time_user", "time_system", "request_results", "cq_poll_count", "core_stats")
    LATENCIES_FIELD_NUMBER: _ClassVar[int]
    TIME_ELAPSED_FIELD_NUMBER: _ClassVar[int]
    TIME_USER_FIELD_NUMBER: _ClassVar[int]
    TIME_SYSTEM_FIELD_NUMBER: _ClassVar[int]
    REQUEST_RESULTS_FIELD_NUMBER: _ClassVar[int]
    CQ_POLL_COUNT_FIELD_NUMBER: _ClassVar[int]
    CORE_STATS_FIELD_NUMBER: _ClassVar[int]
    latencies: HistogramData
    time_elapsed: float
    time_user: float
    time_system: float
    request_results: _containers.RepeatedCompositeFieldContainer[RequestResultCount]
    cq_poll_count: int
    core_stats: _stats_pb2.Stats
    def __init__(self, latencies: _Optional[_Union[HistogramData, _Mapping]] = ..., time_elapsed: _Optional[float] = ..., time_user: _Optional[float] = ..., time_system: _Optional[float] = ..., request_results: _Optional[_Iterable[_Union[RequestResultCount, _Mapping]]] = ..., cq_poll_count: _Optional[int] = ..., core_stats: _Optional[_Union[_stats_pb2.Stats, _Mapping]] = ...) -> None: ...
