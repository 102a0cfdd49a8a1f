"""The load generators: what one RPC of a cell does (workload), the Python generator (parent and worker
processes), ghz, client channels, the latency histogram, and `grpclab call`.

Kept free of pandas: `python -m bench.load.worker` imports this package in every generator process.
"""
