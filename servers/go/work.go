package main

// Work a handler does before it answers a message, as a request's lab.Work asks: the Go twin of
// servers/work.py (same bounds, same INVALID_ARGUMENT messages). In Go the three kinds are:
//   - wait: time.Sleep-like (a timer the goroutine parks on; an abandoned RPC stops waiting).
//   - block: a blocking nanosleep system call. Unlike time.sleep on Python's event loop it holds nothing
//     else: the runtime parks the goroutine's thread in the syscall and hands its P to another thread
//     (sysmon retakes a P stuck in a syscall after ~20 us), so the other goroutines keep running.
//   - cpu: a busy loop on this thread's CPU clock (the same burn as the GRPCLAB_INJECT_CPU_US knob).

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"grpclab/servers/go/gen/labpb"
)

// Per message, as in servers/work.py.
const (
	maxWaitUS  = 10_000_000
	maxBlockUS = 10_000_000
	maxCPUUS   = 1_000_000
)

type handlerWork struct {
	wait, block, cpu time.Duration
}

// workOf checks a request's work field; the zero handlerWork (none) for a request without it or all zero.
func workOf(w *labpb.Work) (handlerWork, error) {
	if w == nil {
		return handlerWork{}, nil
	}
	for _, f := range []struct {
		name         string
		value, limit uint32
	}{{"wait_us", w.GetWaitUs(), maxWaitUS}, {"block_us", w.GetBlockUs(), maxBlockUS}, {"cpu_us", w.GetCpuUs(), maxCPUUS}} {
		if f.value > f.limit {
			return handlerWork{}, status.Error(codes.InvalidArgument, fmt.Sprintf("work.%s %d > %d", f.name, f.value, f.limit))
		}
	}
	us := func(v uint32) time.Duration { return time.Duration(v) * time.Microsecond }
	return handlerWork{wait: us(w.GetWaitUs()), block: us(w.GetBlockUs()), cpu: us(w.GetCpuUs())}, nil
}

// doWork checks and does one message's work (nothing for a request without it: one nil check).
func doWork(ctx context.Context, w *labpb.Work) error {
	if w == nil {
		return nil
	}
	work, err := workOf(w)
	if err != nil || work.none() {
		return err
	}
	return work.do(ctx)
}

func (w handlerWork) none() bool { return w.wait == 0 && w.block == 0 && w.cpu == 0 }

// do burns the CPU, blocks in the system call, then waits (or returns the status of an abandoned RPC).
func (w handlerWork) do(ctx context.Context) error {
	if w.cpu > 0 {
		burnThreadCPU(w.cpu)
	}
	if w.block > 0 {
		blockingSleep(w.block)
	}
	if w.wait > 0 {
		timer := time.NewTimer(w.wait)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	return nil
}

// blockingSleep sleeps in nanosleep(2), resuming after a signal (the runtime's preemption signals interrupt it).
func blockingSleep(d time.Duration) {
	ts := unix.NsecToTimespec(d.Nanoseconds())
	for {
		var left unix.Timespec
		if err := unix.Nanosleep(&ts, &left); err != unix.EINTR {
			return
		}
		ts = left
	}
}

// burnThreadCPU spins until this OS thread has used d of CPU time. Thread CPU time, not wall time: the
// work must cost exactly this much CPU even when the thread is preempted while burning, so the goroutine
// stays on one thread and reads that thread's clock.
func burnThreadCPU(d time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	end := threadCPUTime() + d
	for threadCPUTime() < end {
	}
}

func threadCPUTime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err) // Linux always has this clock
	}
	return time.Duration(ts.Nano())
}
