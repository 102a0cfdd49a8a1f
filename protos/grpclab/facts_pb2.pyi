from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class FactsRequest(_message.Message):
    __slots__ = ("pinning",)
    PINNING_FIELD_NUMBER: _ClassVar[int]
    pinning: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, pinning: _Optional[_Iterable[int]] = ...) -> None: ...

class FactsReply(_message.Message):
    __slots__ = ("worker", "facts_json")
    WORKER_FIELD_NUMBER: _ClassVar[int]
    FACTS_JSON_FIELD_NUMBER: _ClassVar[int]
    worker: str
    facts_json: str
    def __init__(self, worker: _Optional[str] = ..., facts_json: _Optional[str] = ...) -> None: ...
