"""The lab's gRPC servers: the tutorial's four services on a sync thread pool or on grpc.aio."""
