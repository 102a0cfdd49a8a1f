package main

// Every service (the tutorial's four, lab.Control, health, reflection) is registered through
// countingRegistrar, which wraps each method's handler. The wrapper is where the server
//   - counts finished RPCs for lab.Control/Stats: every RPC of every service once its handler returned,
//     whatever the status (OK, error, cancelled, deadline, malformed request), which is gRPC core's
//     channelz calls_succeeded + calls_failed. A Stats call is not counted while it runs. The count is
//     taken before the status goes on the wire, so a client that saw an RPC end sees it counted.
//   - refuses RPCs beyond --max-concurrent-rpcs with RESOURCE_EXHAUSTED, as grpcio's
//     maximum_concurrent_rpcs does (same message). grpc-go's own MaxConcurrentStreams is a per-connection
//     HTTP/2 limit that queues streams instead of failing them, so it is not the same thing.
//   - picks the reply compression (--compression gzip).
// A wrapper costs two atomic adds and a deferred call per RPC; a grpc.StatsHandler would cost several
// event allocations per RPC, and interceptors do not see a unary RPC whose request fails to decode.
// RPCs that never reach a handler (unknown method, unsupported request compression) are not counted.

import (
	"context"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type rpcHooks struct {
	finished      atomic.Uint64 // RPCs whose handler returned since start or Reset
	active        atomic.Int64  // RPCs in a handler now (kept only with a limit)
	maxConcurrent int64         // 0: no limit
	// "gzip": compress every reply the client accepts gzip for. "": grpc-go's default, which answers a
	// compressed request with replies compressed the same way (gRPC core, under the Python servers, would
	// reply uncompressed). Forcing "identity" instead would put a grpc-encoding header on every reply.
	sendCompressor string
}

var errConcurrency = status.Error(codes.ResourceExhausted, "Concurrent RPC limit exceeded!")

func (h *rpcHooks) begin(ctx context.Context) error {
	if h.sendCompressor != "" {
		// Ignored error: a client that does not accept gzip gets uncompressed replies, as from gRPC core.
		_ = grpc.SetSendCompressor(ctx, h.sendCompressor)
	}
	if h.maxConcurrent > 0 && h.active.Add(1) > h.maxConcurrent {
		return errConcurrency
	}
	return nil
}

func (h *rpcHooks) end() {
	if h.maxConcurrent > 0 {
		h.active.Add(-1)
	}
	h.finished.Add(1)
}

type countingRegistrar struct {
	server *grpc.Server
	hooks  *rpcHooks
}

func (r countingRegistrar) GetServiceInfo() map[string]grpc.ServiceInfo {
	return r.server.GetServiceInfo()
}

func (r countingRegistrar) RegisterService(desc *grpc.ServiceDesc, impl any) {
	wrapped := *desc
	wrapped.Methods = make([]grpc.MethodDesc, len(desc.Methods))
	for i, m := range desc.Methods {
		wrapped.Methods[i] = grpc.MethodDesc{MethodName: m.MethodName, Handler: r.unary(m.Handler)}
	}
	wrapped.Streams = make([]grpc.StreamDesc, len(desc.Streams))
	for i, s := range desc.Streams {
		s.Handler = r.stream(s.Handler)
		wrapped.Streams[i] = s
	}
	r.server.RegisterService(&wrapped, impl)
}

func (r countingRegistrar) unary(handler grpc.MethodHandler) grpc.MethodHandler {
	hooks := r.hooks
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		defer hooks.end()
		if err := hooks.begin(ctx); err != nil {
			return nil, err
		}
		return handler(srv, ctx, dec, interceptor)
	}
}

func (r countingRegistrar) stream(handler grpc.StreamHandler) grpc.StreamHandler {
	hooks := r.hooks
	return func(srv any, stream grpc.ServerStream) error {
		defer hooks.end()
		if err := hooks.begin(stream.Context()); err != nil {
			return err
		}
		return handler(srv, stream)
	}
}
