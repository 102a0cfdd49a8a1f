from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PayloadKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PAYLOAD_KIND_ZEROS: _ClassVar[PayloadKind]
    PAYLOAD_KIND_RANDOM: _ClassVar[PayloadKind]
    PAYLOAD_KIND_TEXT: _ClassVar[PayloadKind]
    PAYLOAD_KIND_RECORDS: _ClassVar[PayloadKind]
PAYLOAD_KIND_ZEROS: PayloadKind
PAYLOAD_KIND_RANDOM: PayloadKind
PAYLOAD_KIND_TEXT: PayloadKind
PAYLOAD_KIND_RECORDS: PayloadKind

class Record(_message.Message):
    __slots__ = ("id", "user", "email", "active", "score", "age", "created_at_ms", "balance_cents", "ratio", "tags", "counts", "address", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    AGE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    BALANCE_CENTS_FIELD_NUMBER: _ClassVar[int]
    RATIO_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    id: int
    user: str
    email: str
    active: bool
    score: float
    age: int
    created_at_ms: int
    balance_cents: int
    ratio: float
    tags: _containers.RepeatedScalarFieldContainer[str]
    counts: _containers.RepeatedScalarFieldContainer[int]
    address: Address
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[int] = ..., user: _Optional[str] = ..., email: _Optional[str] = ..., active: _Optional[bool] = ..., score: _Optional[float] = ..., age: _Optional[int] = ..., created_at_ms: _Optional[int] = ..., balance_cents: _Optional[int] = ..., ratio: _Optional[float] = ..., tags: _Optional[_Iterable[str]] = ..., counts: _Optional[_Iterable[int]] = ..., address: _Optional[_Union[Address, _Mapping]] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Address(_message.Message):
    __slots__ = ("street", "city", "postcode", "latitude", "longitude")
    STREET_FIELD_NUMBER: _ClassVar[int]
    CITY_FIELD_NUMBER: _ClassVar[int]
    POSTCODE_FIELD_NUMBER: _ClassVar[int]
    LATITUDE_FIELD_NUMBER: _ClassVar[int]
    LONGITUDE_FIELD_NUMBER: _ClassVar[int]
    street: str
    city: str
    postcode: str
    latitude: float
    longitude: float
    def __init__(self, street: _Optional[str] = ..., city: _Optional[str] = ..., postcode: _Optional[str] = ..., latitude: _Optional[float] = ..., longitude: _Optional[float] = ...) -> None: ...

class Records(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[Record]
    def __init__(self, records: _Optional[_Iterable[_Union[Record, _Mapping]]] = ...) -> None: ...

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
