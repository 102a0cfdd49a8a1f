from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class PayloadKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PAYLOAD_KIND_ZEROS: _ClassVar[PayloadKind]
    PAYLOAD_KIND_RANDOM: _ClassVar[PayloadKind]
    PAYLOAD_KIND_TEXT: _ClassVar[PayloadKind]
PAYLOAD_KIND_ZEROS: PayloadKind
PAYLOAD_KIND_RANDOM: PayloadKind
PAYLOAD_KIND_TEXT: PayloadKind

class Work(_message.Message):
    __slots__ = ("wait_us", "block_us", "cpu_us")
    WAIT_US_FIELD_NUMBER: _ClassVar[int]
    BLOCK_US_FIELD_NUMBER: _ClassVar[int]
    CPU_US_FIELD_NUMBER: _ClassVar[int]
    wait_us: int
    block_us: int
    cpu_us: int
    def __init__(self, wait_us: _Optional[int] = ..., block_us: _Optional[int] = ..., cpu_us: _Optional[int] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResetRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StatsReply(_message.Message):
    __slots__ = ("pid", "impl", "cpu_user_seconds", "cpu_system_seconds", "rss_bytes", "rpcs_served", "seconds_since_reset")
    PID_FIELD_NUMBER: _ClassVar[int]
    IMPL_FIELD_NUMBER: _ClassVar[int]
    CPU_USER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CPU_SYSTEM_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    RPCS_SERVED_FIELD_NUMBER: _ClassVar[int]
    SECONDS_SINCE_RESET_FIELD_NUMBER: _ClassVar[int]
    pid: int
    impl: str
    cpu_user_seconds: float
    cpu_system_seconds: float
    rss_bytes: int
    rpcs_served: int
    seconds_since_reset: float
    def __init__(self, pid: _Optional[int] = ..., impl: _Optional[str] = ..., cpu_user_seconds: _Optional[float] = ..., cpu_system_seconds: _Optional[float] = ..., rss_bytes: _Optional[int] = ..., rpcs_served: _Optional[int] = ..., seconds_since_reset: _Optional[float] = ...) -> None: ...
