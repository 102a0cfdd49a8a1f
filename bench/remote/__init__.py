"""Past one machine: gRPC's benchmark worker protocol (grpc.testing.WorkerService), the lab's worker
(`grpclab worker`) and the lab as a driver of workers (so far one cell over two workers: driver.py)."""
