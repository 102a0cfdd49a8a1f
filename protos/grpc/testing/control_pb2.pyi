from ..testing import payloads_pb2 as _payloads_pb2
from ..testing import stats_pb2 as _stats_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClientType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SYNC_CLIENT: _ClassVar[ClientType]
    ASYNC_CLIENT: _ClassVar[ClientType]
    OTHER_CLIENT: _ClassVar[ClientType]
    CALLBACK_CLIENT: _ClassVar[ClientType]

class ServerType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SYNC_SERVER: _ClassVar[ServerType]
    ASYNC_SERVER: _ClassVar[ServerType]
    ASYNC_GENERIC_SERVER: _ClassVar[ServerType]
    OTHER_SERVER: _ClassVar[ServerType]
    CALLBACK_SERVER: _ClassVar[ServerType]

class RpcType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UNARY: _ClassVar[RpcType]
    STREAMING: _ClassVar[RpcType]
    STREAMING_FROM_CLIENT: _ClassVar[RpcType]
    STREAMING_FROM_SERVER: _ClassVar[RpcType]
    STREAMING_BOTH_WAYS: _ClassVar[RpcType]
SYNC_CLIENT: ClientType
ASYNC_CLIENT: ClientType
OTHER_CLIENT: ClientType
CALLBACK_CLIENT: ClientType
SYNC_SERVER: ServerType
ASYNC_SERVER: ServerType
ASYNC_GENERIC_SERVER: ServerType
OTHER_SERVER: ServerType
CALLBACK_SERVER: ServerType
UNARY: RpcType
STREAMING: RpcType
STREAMING_FROM_CLIENT: RpcType
STREAMING_FROM_SERVER: RpcType
STREAMING_BOTH_WAYS: RpcType

class PoissonParams(_message.Message):
    __slots__ = ("offered_load",)
    OFFERED_LOAD_FIELD_NUMBER: _ClassVar[int]
    offered_load: float
    def __init__(self, offered_load: _Optional[float] = ...) -> None: ...

class ClosedLoopParams(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LoadParams(_message.Message):
    __slots__ = ("closed_loop", "poisson")
    CLOSED_LOOP_FIELD_NUMBER: _ClassVar[int]
    POISSON_FIELD_NUMBER: _ClassVar[int]
    closed_loop: ClosedLoopParams
    poisson: PoissonParams
    def __init__(self, closed_loop: _Optional[_Union[ClosedLoopParams, _Mapping]] = ..., poisson: _Optional[_Union[PoissonParams, _Mapping]] = ...) -> None: ...

class SecurityParams(_message.Message):
    __slots__ = ("use_test_ca", "server_host_override", "cred_type")
    USE_TEST_CA_FIELD_NUMBER: _ClassVar[int]
    SERVER_HOST_OVERRIDE_FIELD_NUMBER: _ClassVar[int]
    CRED_TYPE_FIELD_NUMBER: _ClassVar[int]
    use_test_ca: bool
    server_host_override: str
    cred_type: str
    def __init__(self, use_test_ca: _Optional[bool] = ..., server_host_override: _Optional[str] = ..., cred_type: _Optional[str] = ...) -> None: ...

class ChannelArg(_message.Message):
    __slots__ = ("name", "str_value", "int_value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STR_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    str_value: str
    int_value: int
    def __init__(self, name: _Optional[str] = ..., str_value: _Optional[str] = ..., int_value: _Optional[int] = ...) -> None: ...

class ClientConfig(_message.Message):
    __slots__ = ("server_targets", "client_type", "security_params", "outstanding_rpcs_per_channel", "client_channels", "async_client_threads", "rpc_type", "load_params", "payload_config", "histogram_params", "core_list", "core_limit", "other_client_api", "channel_args", "threads_per_cq", "messages_per_stream", "use_coalesce_api", "median_latency_collection_interval_millis", "client_processes")
    SERVER_TARGETS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SECURITY_PARAMS_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_RPCS_PER_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CLIENT_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    ASYNC_CLIENT_THREADS_FIELD_NUMBER: _ClassVar[int]
    RPC_TYPE_FIELD_NUMBER: _ClassVar[int]
    LOAD_PARAMS_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_CONFIG_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAM_PARAMS_FIELD_NUMBER: _ClassVar[int]
    CORE_LIST_FIELD_NUMBER: _ClassVar[int]
    CORE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    OTHER_CLIENT_API_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ARGS_FIELD_NUMBER: _ClassVar[int]
    THREADS_PER_CQ_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_PER_STREAM_FIELD_NUMBER: _ClassVar[int]
    USE_COALESCE_API_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_LATENCY_COLLECTION_INTERVAL_MILLIS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_PROCESSES_FIELD_NUMBER: _ClassVar[int]
    server_targets: _containers.RepeatedScalarFieldContainer[str]
    client_type: ClientType
    security_params: SecurityParams
    outstanding_rpcs_per_channel: int
    client_channels: int
    async_client_threads: int
    rpc_type: RpcType
    load_params: LoadParams
    payload_config: _payloads_pb2.PayloadConfig
    histogram_params: _stats_pb2.HistogramParams
    core_list: _containers.RepeatedScalarFieldContainer[int]
    core_limit: int
    other_client_api: str
    channel_args: _containers.RepeatedCompositeFieldContainer[ChannelArg]
    threads_per_cq: int
    messages_per_stream: int
    use_coalesce_api: bool
    median_latency_collection_interval_millis: int
    client_processes: int
    def __init__(self, server_targets: _Optional[_Iterable[str]] = ..., client_type: _Optional[_Union[ClientType, str]] = ..., security_params: _Optional[_Union[SecurityParams, _Mapping]] = ..., outstanding_rpcs_per_channel: _Optional[int] = ..., client_channels: _Optional[int] = ..., async_client_threads: _Optional[int] = ..., rpc_type: _Optional[_Union[RpcType, str]] = ..., load_params: _Optional[_Union[LoadParams, _Mapping]] = ..., payload_config: _Optional[_Union[_payloads_pb2.PayloadConfig, _Mapping]] = ..., histogram_params: _Optional[_Union[_stats_pb2.HistogramParams, _Mapping]] = ..., core_list: _Optional[_Iterable[int]] = ..., core_limit: _Optional[int] = ..., other_client_api: _Optional[str] = ..., channel_args: _Optional[_Iterable[_Union[ChannelArg, _Mapping]]] = ..., threads_per_cq: _Optional[int] = ..., messages_per_stream: _Optional[int] = ..., use_coalesce_api: _Optional[bool] = ..., median_latency_collection_interval_millis: _Optional[int] = ..., client_processes: _Optional[int] = ...) -> None: ...

class ClientStatus(_message.Message):
    __slots__ = ("stats",)
    STATS_FIELD_NUMBER: _ClassVar[int]
    stats: _stats_pb2.ClientStats
    def __init__(self, stats: _Optional[_Union[_stats_pb2.ClientStats, _Mapping]] = ...) -> None: ...

class Mark(_message.Message):
    __slots__ = ("reset",)
    RESET_FIELD_NUMBER: _ClassVar[int]
    reset: bool
    def __init__(self, reset: _Optional[bool] = ...) -> None: ...

class ClientArgs(_message.Message):
    __slots__ = ("setup", "mark")
    SETUP_FIELD_NUMBER: _ClassVar[int]
    MARK_FIELD_NUMBER: _ClassVar[int]
    setup: ClientConfig
    mark: Mark
    def __init__(self, setup: _Optional[_Union[ClientConfig, _Mapping]] = ..., mark: _Optional[_Union[Mark, _Mapping]] = ...) -> None: ...

class ServerConfig(_message.Message):
    __slots__ = ("server_type", "security_params", "port", "async_server_threads", "core_limit", "payload_config", "core_list", "other_server_api", "threads_per_cq", "server_processes", "resource_quota_size", "channel_args")
    SERVER_TYPE_FIELD_NUMBER: _ClassVar[int]
    SECURITY_PARAMS_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    ASYNC_SERVER_THREADS_FIELD_NUMBER: _ClassVar[int]
    CORE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_CONFIG_FIELD_NUMBER: _ClassVar[int]
    CORE_LIST_FIELD_NUMBER: _ClassVar[int]
    OTHER_SERVER_API_FIELD_NUMBER: _ClassVar[int]
    THREADS_PER_CQ_FIELD_NUMBER: _ClassVar[int]
    SERVER_PROCESSES_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_QUOTA_SIZE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ARGS_FIELD_NUMBER: _ClassVar[int]
    server_type: ServerType
    security_params: SecurityParams
    port: int
    async_server_threads: int
    core_limit: int
    payload_config: _payloads_pb2.PayloadConfig
    core_list: _containers.RepeatedScalarFieldContainer[int]
    other_server_api: str
    threads_per_cq: int
    server_processes: int
    resource_quota_size: int
    channel_args: _containers.RepeatedCompositeFieldContainer[ChannelArg]
    def __init__(self, server_type: _Optional[_Union[ServerType, str]] = ..., security_params: _Optional[_Union[SecurityParams, _Mapping]] = ..., port: _Optional[int] = ..., async_server_threads: _Optional[int] = ..., core_limit: _Optional[int] = ..., payload_config: _Optional[_Union[_payloads_pb2.PayloadConfig, _Mapping]] = ..., core_list: _Optional[_Iterable[int]] = ..., other_server_api: _Optional[str] = ..., threads_per_cq: _Optional[int] = ..., server_processes: _Optional[int] = ..., resource_quota_size: _Optional[int] = ..., channel_args: _Optional[_Iterable[_Union[ChannelArg, _Mapping]]] = ...) -> None: ...

class ServerArgs(_message.Message):
    __slots__ = ("setup", "mark")
    SETUP_FIELD_NUMBER: _ClassVar[int]
    MARK_FIELD_NUMBER: _ClassVar[int]
    setup: ServerConfig
    mark: Mark
    def __init__(self, setup: _Optional[_Union[ServerConfig, _Mapping]] = ..., mark: _Optional[_Union[Mark, _Mapping]] = ...) -> None: ...

class ServerStatus(_message.Message):
    __slots__ = ("stats", "port", "cores")
    STATS_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    CORES_FIELD_NUMBER: _ClassVar[int]
    stats: _stats_pb2.ServerStats
    port: int
    cores: int
    def __init__(self, stats: _Optional[_Union[_stats_pb2.ServerStats, _Mapping]] = ..., port: _Optional[int] = ..., cores: _Optional[int] = ...) -> None: ...

class CoreRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CoreResponse(_message.Message):
    __slots__ = ("cores",)
    CORES_FIELD_NUMBER: _ClassVar[int]
    cores: int
    def __init__(self, cores: _Optional[int] = ...) -> None: ...

class Void(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Scenario(_message.Message):
    __slots__ = ("name", "client_config", "num_clients", "server_config", "num_servers", "warmup_seconds", "benchmark_seconds", "spawn_local_worker_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CLIENT_CONFIG_FIELD_NUMBER: _ClassVar[int]
    NUM_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    SERVER_CONFIG_FIELD_NUMBER: _ClassVar[int]
    NUM_SERVERS_FIELD_NUMBER: _ClassVar[int]
    WARMUP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BENCHMARK_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SPAWN_LOCAL_WORKER_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    client_config: ClientConfig
    num_clients: int
    server_config: ServerConfig
    num_servers: int
    warmup_seconds: int
    benchmark_seconds: int
    spawn_local_worker_count: int
    def __init__(self, name: _Optional[str] = ..., client_config: _Optional[_Union[ClientConfig, _Mapping]] = ..., num_clients: _Optional[int] = ..., server_config: _Optional[_Union[ServerConfig, _Mapping]] = ..., num_servers: _Optional[int] = ..., warmup_seconds: _Optional[int] = ..., benchmark_seconds: _Optional[int] = ..., spawn_local_worker_count: _Optional[int] = ...) -> None: ...

class Scenarios(_message.Message):
    __slots__ = ("scenarios",)
    SCENARIOS_FIELD_NUMBER: _ClassVar[int]
    scenarios: _containers.RepeatedCompositeFieldContainer[Scenario]
    def __init__(self, scenarios: _Optional[_Iterable[_Union[Scenario, _Mapping]]] = ...) -> None: ...
