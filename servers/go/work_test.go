package main

import (
	"context"
	"runtime"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"grpclab/servers/go/gen/labpb"
)

func TestWorkOfChecksTheBoundsLikeThePythonServers(t *testing.T) {
	for _, w := range []*labpb.Work{nil, {}} {
		if work, err := workOf(w); err != nil || !work.none() {
			t.Fatalf("%v: %+v, %v", w, work, err)
		}
	}
	work, err := workOf(&labpb.Work{WaitUs: maxWaitUS, BlockUs: 3, CpuUs: maxCPUUS})
	if err != nil || work.wait != 10*time.Second || work.block != 3*time.Microsecond || work.cpu != time.Second {
		t.Fatalf("%+v, %v", work, err)
	}
	// servers/work.py's messages, word for word.
	for w, message := range map[*labpb.Work]string{
		{WaitUs: maxWaitUS + 1}:   "work.wait_us 10000001 > 10000000",
		{BlockUs: maxBlockUS + 1}: "work.block_us 10000001 > 10000000",
		{CpuUs: maxCPUUS + 1}:     "work.cpu_us 1000001 > 1000000",
	} {
		_, err := workOf(w)
		if s, _ := status.FromError(err); s.Code() != codes.InvalidArgument || s.Message() != message {
			t.Errorf("%v: got %v", w, err)
		}
	}
}

// A goroutine in the blocking system call holds neither the other goroutines nor the only P.
func TestBlockingSleepLetsOtherGoroutinesRun(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const blocked = 200 * time.Millisecond
	done := make(chan time.Duration)
	go func() {
		start := time.Now()
		blockingSleep(blocked)
		done <- time.Since(start)
	}()
	ticks := 0
	for {
		select {
		case took := <-done:
			if took < blocked {
				t.Fatalf("slept %v, asked %v", took, blocked)
			}
			// 1 ms ticks went on while the other goroutine was in nanosleep (at least a quarter of them).
			if ticks < int(blocked/time.Millisecond)/4 {
				t.Fatalf("only %d ticks of 1 ms during a %v blocking sleep", ticks, took)
			}
			return
		case <-time.After(time.Millisecond):
			ticks++
		}
	}
}

func TestWorkWaitEndsWithAnAbandonedRPC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := handlerWork{wait: 10 * time.Second}.do(ctx)
	if s, _ := status.FromError(err); s.Code() != codes.DeadlineExceeded || time.Since(start) > time.Second {
		t.Fatalf("%v after %v", err, time.Since(start))
	}
}
