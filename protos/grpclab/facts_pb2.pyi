from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class FactsRequest(_message.Message):
    __slots__ = ("pinning",)
    PINNING_FIELD_NUMBER: _ClassVar[int]
    pinning: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, pinning: _Optional[_Iterable[int]] = ...) -> None: ...

class FactsReply(_message.Message):
    __slots__ = ("worker", "facts_json", "versions")
    class VersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    WORKER_FIELD_NUMBER: _ClassVar[int]
    FACTS_JSON_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    worker: str
    facts_json: str
    versions: _containers.ScalarMap[str, str]
    def __init__(self, worker: _Optional[str] = ..., facts_json: _Optional[str] = ..., versions: _Optional[_Mapping[str, str]] = ...) -> None: ...
