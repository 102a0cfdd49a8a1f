package main

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"
)

func env(values map[string]string) func(string) string {
	return func(name string) string { return values[name] }
}

func TestFaultsFromEnv(t *testing.T) {
	f, err := faultsFromEnv(env(nil))
	if err != nil || f.active {
		t.Fatalf("no variable: active=%v err=%v", f.active, err)
	}
	f, err = faultsFromEnv(env(map[string]string{envDelayUS: " 50000 ", envCPUUS: "7", envStall: "3:250"}))
	if err != nil || !f.active || f.delay != 50*time.Millisecond || f.cpu != 7*time.Microsecond ||
		f.stallAfter != 3 || f.stall != 250*time.Millisecond {
		t.Fatalf("parsed %+v, %v", f, err)
	}
	// The values servers/faults.py refuses, refused with a message naming the variable.
	bad := map[string][]string{
		envDelayUS: {"abc", "-5", "1.5", "50ms", "²", "+5"},
		envCPUUS:   {"1e3"},
		envStall:   {"5", "0:100", "5:", ":5", "5:²", "a:b"},
	}
	for name, values := range bad {
		for _, value := range values {
			if _, err := faultsFromEnv(env(map[string]string{name: value})); err == nil ||
				!strings.HasPrefix(err.Error(), name+": expected") {
				t.Errorf("%s=%q: got %v", name, value, err)
			}
		}
	}
}

func processCPU() time.Duration {
	var usage syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

func TestInjectedCPUIsBurnt(t *testing.T) {
	const burn = 50 * time.Millisecond
	before := processCPU()
	burnThreadCPU(burn)
	if used := processCPU() - before; used < burn || used > 3*burn {
		t.Fatalf("burnt %v of CPU for %v injected", used, burn)
	}
}

func TestStallDelaysTheRPCsThatStartDuringIt(t *testing.T) {
	f, _ := faultsFromEnv(env(map[string]string{envStall: "2:200"}))
	took := func() time.Duration {
		start := time.Now()
		if err := f.onRPCStart(context.Background()); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	if first := took(); first > 100*time.Millisecond {
		t.Fatalf("first RPC waited %v", first)
	}
	if second := took(); second < 200*time.Millisecond {
		t.Fatalf("the stalling RPC waited only %v", second)
	}
	// A cancelled RPC stops waiting.
	f2, _ := faultsFromEnv(env(map[string]string{envDelayUS: "10000000"}))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := f2.onRPCStart(ctx); err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("cancelled wait: %v after %v", err, time.Since(start))
	}
}
