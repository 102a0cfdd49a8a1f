from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ByteBufferParams(_message.Message):
    __slots__ = ("req_size", "resp_size")
    REQ_SIZE_FIELD_NUMBER: _ClassVar[int]
    RESP_SIZE_FIELD_NUMBER: _ClassVar[int]
    req_size: int
    resp_size: int
    def __init__(self, req_size: _Optional[int] = ..., resp_size: _Optional[int] = ...) -> None: ...

class SimpleProtoParams(_message.Message):
    __slots__ = ("req_size", "resp_size")
    REQ_SIZE_FIELD_NUMBER: _ClassVar[int]
    RESP_SIZE_FIELD_NUMBER: _ClassVar[int]
    req_size: int
    resp_size: int
    def __init__(self, req_size: _Optional[int] = ..., resp_size: _Optional[int] = ...) -> None: ...

class ComplexProtoParams(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PayloadConfig(_message.Message):
    __slots__ = ("bytebuf_params", "simple_params", "complex_params")
    BYTEBUF_PARAMS_FIELD_NUMBER: _ClassVar[int]
    SIMPLE_PARAMS_FIELD_NUMBER: _ClassVar[int]
    COMPLEX_PARAMS_FIELD_NUMBER: _ClassVar[int]
    bytebuf_params: ByteBufferParams
    simple_params: SimpleProtoParams
    complex_params: ComplexProtoParams
    def __init__(self, bytebuf_params: _Optional[_Union[ByteBufferParams, _Mapping]] = ..., simple_params: _Optional[_Union[SimpleProtoParams, _Mapping]] = ..., complex_params: _Optional[_Union[ComplexProtoParams, _Mapping]] = ...) -> None: ...
