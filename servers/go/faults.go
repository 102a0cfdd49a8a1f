package main

// Test-only fault injection, read from the environment once at start: the Go twin of servers/faults.py
// (same variables, same meaning). Off unless a variable is set, and then a handler pays one branch.

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

const (
	envDelayUS = "GRPCLAB_INJECT_DELAY_US" // sleep this long at the start of every RPC
	envCPUUS   = "GRPCLAB_INJECT_CPU_US"   // burn this much thread CPU time at the start of every RPC
	envStall   = "GRPCLAB_INJECT_STALL"    // "AFTER_RPCS:MILLISECONDS": once, stall every RPC start for that long
)

type faults struct {
	active     bool
	delay      time.Duration
	cpu        time.Duration
	stallAfter uint64
	stall      time.Duration
	started    atomic.Uint64 // tutorial-service RPCs started (counted only while a fault is active)
	mu         sync.Mutex
	stallUntil time.Time
}

func asciiDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func nonNegativeInt(getenv func(string) string, name string) (uint64, error) {
	raw := strings.TrimSpace(getenv(name))
	if raw == "" {
		return 0, nil
	}
	value, err := strconv.ParseUint(raw, 10, 63)
	if !asciiDigits(raw) || err != nil {
		return 0, fmt.Errorf("%s: expected a non-negative integer, got '%s'", name, raw)
	}
	return value, nil
}

func faultsFromEnv(getenv func(string) string) (*faults, error) {
	f := &faults{}
	if raw := strings.TrimSpace(getenv(envStall)); raw != "" {
		after, ms, _ := strings.Cut(raw, ":")
		afterN, errA := strconv.ParseUint(after, 10, 63)
		msN, errM := strconv.ParseUint(ms, 10, 63)
		if !asciiDigits(after) || !asciiDigits(ms) || errA != nil || errM != nil || afterN == 0 {
			return nil, fmt.Errorf("%s: expected AFTER_RPCS:MILLISECONDS, got '%s'", envStall, raw)
		}
		f.stallAfter, f.stall = afterN, time.Duration(msN)*time.Millisecond
	}
	delay, err := nonNegativeInt(getenv, envDelayUS)
	if err != nil {
		return nil, err
	}
	cpu, err := nonNegativeInt(getenv, envCPUUS)
	if err != nil {
		return nil, err
	}
	f.delay, f.cpu = time.Duration(delay)*time.Microsecond, time.Duration(cpu)*time.Microsecond
	f.active = f.delay > 0 || f.cpu > 0 || f.stallAfter > 0
	return f, nil
}

// onRPCStart burns the injected CPU, then waits the injected delay and any stall in progress
// (or until the RPC is cancelled). Only called when f.active.
func (f *faults) onRPCStart(ctx context.Context) error {
	number := f.started.Add(1)
	if f.cpu > 0 {
		burnThreadCPU(f.cpu)
	}
	wait := f.delay
	if f.stallAfter > 0 {
		now := time.Now()
		f.mu.Lock()
		if number == f.stallAfter {
			f.stallUntil = now.Add(f.stall)
		}
		left := f.stallUntil.Sub(now)
		f.mu.Unlock()
		wait += max(0, left)
	}
	if wait <= 0 {
		return nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// burnThreadCPU spins until this OS thread has used d of CPU time. Thread CPU time, not wall time: the
// knob must cost exactly this much CPU even when the thread is preempted while burning, so the goroutine
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
