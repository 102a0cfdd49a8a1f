package main

// The tutorial's four services and lab.Control: the Go twin of servers/logic.py. Same replies, same
// status codes and messages for bad lab fields, same order of checks.

import (
	"context"
	"errors"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"grpclab/servers/go/gen/chatpb"
	"grpclab/servers/go/gen/greetpb"
	"grpclab/servers/go/gen/labpb"
	"grpclab/servers/go/gen/numberstreampb"
	"grpclab/servers/go/gen/sumstreampb"
)

// lab is the state every service of one server shares.
type lab struct {
	bodies  *bodies
	faults  *faults
	hooks   *rpcHooks
	started time.Time
	resetAt atomic.Int64 // nanoseconds after started
}

// begin runs the injected faults (test knobs) at the start of a tutorial-service RPC.
func (l *lab) begin(ctx context.Context) error {
	if l.faults.active {
		if err := l.faults.onRPCStart(ctx); err != nil {
			return status.FromContextError(err).Err()
		}
	}
	return nil
}

func invalidArgument(err error) error {
	return status.Error(codes.InvalidArgument, err.Error())
}

// readPayload decodes a request payload as the server would use it; a bad one is INVALID_ARGUMENT.
func readPayload(data []byte, level uint32) error {
	if _, err := decodePayload(data, level, maxInflatedBytes); err != nil {
		return invalidArgument(err)
	}
	return nil
}

// replyPayload is the payload a call's replies carry, from the request's response_* fields.
type replyPayload struct {
	body  []byte
	level uint32
}

func (l *lab) replyPayload(size uint32, kind labpb.PayloadKind, level uint32) (replyPayload, error) {
	switch kind {
	case labpb.PayloadKind_PAYLOAD_KIND_ZEROS, labpb.PayloadKind_PAYLOAD_KIND_RANDOM, labpb.PayloadKind_PAYLOAD_KIND_TEXT:
	default:
		return replyPayload{}, status.Errorf(codes.InvalidArgument, "unknown response_kind %d", int32(kind))
	}
	if size > maxResponseSize {
		return replyPayload{}, status.Errorf(codes.InvalidArgument, "response_size %d > %d", size, maxResponseSize)
	}
	if err := checkLevel(level); err != nil {
		return replyPayload{}, invalidArgument(err)
	}
	return replyPayload{body: l.bodies.get(kind, int(size)), level: level}, nil
}

// next encodes once per message: app-level gzip CPU is paid per reply, as a real server would.
func (r replyPayload) next() []byte { return encodePayload(r.body, r.level) }

type greeter struct {
	greetpb.UnimplementedGreeterServer
	lab *lab
}

func (g *greeter) SayHello(ctx context.Context, req *greetpb.HelloRequest) (*greetpb.HelloReply, error) {
	if err := g.lab.begin(ctx); err != nil {
		return nil, err
	}
	if err := readPayload(req.GetPayload(), req.GetPayloadGzipLevel()); err != nil {
		return nil, err
	}
	reply, err := g.lab.replyPayload(req.GetResponseSize(), req.GetResponseKind(), req.GetPayloadGzipLevel())
	if err != nil {
		return nil, err
	}
	return &greetpb.HelloReply{
		Message: "Hello, " + req.GetName() + "!", Payload: reply.next(), PayloadGzipLevel: reply.level,
	}, nil
}

type numberService struct {
	numberstreampb.UnimplementedNumberServiceServer
	lab *lab
}

func (n *numberService) GetNumbers(req *numberstreampb.NumberRequest, stream numberstreampb.NumberService_GetNumbersServer) error {
	ctx := stream.Context()
	if err := n.lab.begin(ctx); err != nil {
		return err
	}
	if err := readPayload(req.GetPayload(), req.GetPayloadGzipLevel()); err != nil {
		return err
	}
	reply, err := n.lab.replyPayload(req.GetResponseSize(), req.GetResponseKind(), req.GetPayloadGzipLevel())
	if err != nil {
		return err
	}
	for i := range max(req.GetLimit(), 0) {
		// An abandoned stream (cancel, deadline) stops producing at once.
		if err := ctx.Err(); err != nil {
			return status.FromContextError(err).Err()
		}
		if err := stream.Send(&numberstreampb.NumberResponse{
			Number: i, Payload: reply.next(), PayloadGzipLevel: reply.level,
		}); err != nil {
			return err
		}
	}
	return nil
}

type sumService struct {
	sumstreampb.UnimplementedSumServiceServer
	lab *lab
}

func (s *sumService) CalculateSum(stream sumstreampb.SumService_CalculateSumServer) error {
	if err := s.lab.begin(stream.Context()); err != nil {
		return err
	}
	var total int64
	var reply *replyPayload // follows the first request's response_* fields
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := readPayload(req.GetPayload(), req.GetPayloadGzipLevel()); err != nil {
			return err
		}
		if reply == nil {
			r, err := s.lab.replyPayload(req.GetResponseSize(), req.GetResponseKind(), req.GetPayloadGzipLevel())
			if err != nil {
				return err
			}
			reply = &r
		}
		total += int64(req.GetNumber())
		// The tutorial's reply field is int32: say so instead of sending a wrapped sum.
		if total < math.MinInt32 || total > math.MaxInt32 {
			return status.Error(codes.OutOfRange, "sum does not fit the int32 'sum' field")
		}
	}
	if reply == nil {
		reply = &replyPayload{body: nil, level: 0}
	}
	return stream.SendAndClose(&sumstreampb.SumResponse{
		Sum: int32(total), Payload: reply.next(), PayloadGzipLevel: reply.level,
	})
}

type chatService struct {
	chatpb.UnimplementedChatServiceServer
	lab *lab
}

func (c *chatService) Chat(stream chatpb.ChatService_ChatServer) error {
	if err := c.lab.begin(stream.Context()); err != nil {
		return err
	}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := readPayload(req.GetPayload(), req.GetPayloadGzipLevel()); err != nil {
			return err
		}
		reply, err := c.lab.replyPayload(req.GetResponseSize(), req.GetResponseKind(), req.GetPayloadGzipLevel())
		if err != nil {
			return err
		}
		if err := stream.Send(&chatpb.ChatResponse{
			Message: "You said: " + req.GetMessage(), Payload: reply.next(), PayloadGzipLevel: reply.level,
		}); err != nil {
			return err
		}
	}
}

type control struct {
	labpb.UnimplementedControlServer
	lab *lab
}

func (c *control) Stats(context.Context, *labpb.StatsRequest) (*labpb.StatsReply, error) {
	return c.lab.stats(c.lab.hooks.finished.Load(), time.Since(c.lab.started)), nil
}

func (c *control) Reset(context.Context, *labpb.ResetRequest) (*labpb.StatsReply, error) {
	now := time.Since(c.lab.started)
	// The counters as they were; the swap loses no RPC that finishes meanwhile.
	before := c.lab.stats(c.lab.hooks.finished.Swap(0), now)
	c.lab.resetAt.Store(int64(now))
	return before, nil
}

func (l *lab) stats(served uint64, now time.Duration) *labpb.StatsReply {
	var usage syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &usage) // cannot fail for RUSAGE_SELF
	return &labpb.StatsReply{
		Pid:               uint32(os.Getpid()),
		Impl:              "go",
		CpuUserSeconds:    seconds(usage.Utime),
		CpuSystemSeconds:  seconds(usage.Stime),
		RssBytes:          residentBytes(),
		RpcsServed:        served,
		SecondsSinceReset: (now - time.Duration(l.resetAt.Load())).Seconds(),
	}
}

func seconds(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// residentBytes reads the resident set size from /proc/self/statm (pages), as psutil does for Python.
func residentBytes() uint64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data))
	if len(fields) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(fields[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}
