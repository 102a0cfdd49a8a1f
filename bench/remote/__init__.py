"""Past one machine: gRPC's benchmark worker protocol (grpc.testing.WorkerService), the lab's worker, the lab as
a driver of workers anywhere (a placement), scenarios for gRPC's own driver, and Kubernetes LoadTests."""
