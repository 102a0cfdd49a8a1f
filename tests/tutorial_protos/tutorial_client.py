"""The tutorial's four client programs merged into one script.

tests/test_protos.py generates stubs from the verbatim .proto files next to this
file (python -m grpc_tools.protoc) into a directory put on PYTHONPATH, then runs
this script against the lab's servers. It is never imported by pytest: its
message names would clash with the lab's in protobuf's default descriptor pool.

The code is the tutorial's, fixed only where the tutorial is wrong:
- compression uses the public ``compression=grpc.Compression.Gzip`` argument instead of
  the private ``grpc._cython.cygrpc`` import and the misspelled
  ``grpc.grpc.default_compression_level`` channel argument;
- TLS trusts the CA that signed the server certificate (``--ca ca.crt``), not server.crt;
- the four programs share one ``--target`` instead of ports 50051-50054.

Usage: python tutorial_client.py --target 127.0.0.1:PORT [--ca DIR/ca.crt] [--gzip]
"""

import argparse
import sys

import chat_pb2
import chat_pb2_grpc
import greet_pb2
import greet_pb2_grpc
import grpc
import number_stream_pb2
import number_stream_pb2_grpc
import sum_stream_pb2
import sum_stream_pb2_grpc


def make_channel(target, ca=None, gzip=False):
    # 性能优化: 启用压缩
    compression = grpc.Compression.Gzip if gzip else None
    if ca is None:
        return grpc.insecure_channel(target, compression=compression)
    # 加载证书
    with open(ca, 'rb') as f:
        trusted_certs = f.read()
    credentials = grpc.ssl_channel_credentials(root_certificates=trusted_certs)
    # 创建安全通道
    return grpc.secure_channel(target, credentials, compression=compression)


def run_greeter(channel):
    stub = greet_pb2_grpc.GreeterStub(channel)
    response = stub.SayHello(greet_pb2.HelloRequest(name='world'))
    print("Greeter client received: " + response.message)


def run_numbers(channel):
    stub = number_stream_pb2_grpc.NumberServiceStub(channel)
    response_iterator = stub.GetNumbers(number_stream_pb2.NumberRequest(limit=10))
    for response in response_iterator:
        print("Received number: ", response.number)


def run_sum(channel):
    stub = sum_stream_pb2_grpc.SumServiceStub(channel)
    numbers = [1, 2, 3, 4, 5]
    requests = (sum_stream_pb2.NumberRequest(number=num) for num in numbers)
    response = stub.CalculateSum(requests)
    print("Sum: ", response.sum)


def run_chat(channel):
    stub = chat_pb2_grpc.ChatServiceStub(channel)
    messages = ['Hello', 'How are you?', 'Goodbye']
    requests = (chat_pb2.ChatRequest(message=msg) for msg in messages)
    responses = stub.Chat(requests)
    for response in responses:
        print("Received: ", response.message)


def run():
    parser = argparse.ArgumentParser(description="the tutorial's four clients")
    parser.add_argument('--target', default='localhost:50051')
    parser.add_argument('--ca', help='CA certificate to trust (TLS); plaintext without it')
    parser.add_argument('--gzip', action='store_true', help='gzip-compress requests')
    args = parser.parse_args()
    channel = make_channel(args.target, args.ca, args.gzip)
    # 错误处理
    try:
        run_greeter(channel)
        run_numbers(channel)
        run_sum(channel)
        run_chat(channel)
    except grpc.RpcError as e:
        print("Error occurred: ", e.code(), e.details())
        return 1
    finally:
        channel.close()
    return 0


if __name__ == '__main__':
    sys.exit(run())
