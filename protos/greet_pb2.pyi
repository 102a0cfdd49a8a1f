from . import lab_pb2 as _lab_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HelloRequest(_message.Message):
    __slots__ = ("name", "payload", "payload_gzip_level", "response_size", "response_kind", "work", "records")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_GZIP_LEVEL_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_SIZE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_KIND_FIELD_NUMBER: _ClassVar[int]
    WORK_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    payload: bytes
    payload_gzip_level: int
    response_size: int
    response_kind: _lab_pb2.PayloadKind
    work: _lab_pb2.Work
    records: _lab_pb2.Records
    def __init__(self, name: _Optional[str] = ..., payload: _Optional[bytes] = ..., payload_gzip_level: _Optional[int] = ..., response_size: _Optional[int] = ..., response_kind: _Optional[_Union[_lab_pb2.PayloadKind, str]] = ..., work: _Optional[_Union[_lab_pb2.Work, _Mapping]] = ..., records: _Optional[_Union[_lab_pb2.Records, _Mapping]] = ...) -> None: ...

class HelloReply(_message.Message):
    __slots__ = ("message", "payload", "payload_gzip_level", "records")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_GZIP_LEVEL_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    message: str
    payload: bytes
    payload_gzip_level: int
    records: _lab_pb2.Records
    def __init__(self, message: _Optional[str] = ..., payload: _Optional[bytes] = ..., payload_gzip_level: _Optional[int] = ..., records: _Optional[_Union[_lab_pb2.Records, _Mapping]] = ...) -> None: ...
