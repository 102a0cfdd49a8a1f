package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"grpclab/servers/go/gen/labpb"
)

func textSample(n int) []byte {
	return bytes.Repeat([]byte(`{"id":100001,"user":"alpha_42","city":"Lima","tags":["echo","golf"]}`+"\n"), n)
}

func TestEncodeDecodeRoundTripAtEveryLevel(t *testing.T) {
	raw := textSample(200)
	for level := uint32(0); level <= 9; level++ {
		encoded := encodePayload(raw, level)
		if level == 0 && !bytes.Equal(encoded, raw) {
			t.Fatalf("level 0 must send the payload as is")
		}
		if level > 0 {
			if len(encoded) >= len(raw)/3 {
				t.Errorf("level %d: %d bytes from %d, not compressed", level, len(encoded), len(raw))
			}
			// A real gzip member at that level: what Python's zlib (wbits 31) reads.
			r, err := gzip.NewReader(bytes.NewReader(encoded))
			if err != nil {
				t.Fatalf("level %d: %v", level, err)
			}
			if got, _ := io.ReadAll(r); !bytes.Equal(got, raw) {
				t.Fatalf("level %d: gzip round trip differs", level)
			}
			want := map[uint32]byte{1: 4, 9: 2}[level] // XFL, as zlib writes it too
			if encoded[8] != want {
				t.Errorf("level %d: XFL %d, want %d", level, encoded[8], want)
			}
		}
		decoded, err := decodePayload(encoded, level, maxInflatedBytes)
		if err != nil || !bytes.Equal(decoded, raw) {
			t.Fatalf("level %d: decode: %v", level, err)
		}
	}
}

func TestEncodeUsesTheRequestedLevel(t *testing.T) {
	raw := textSample(2000)
	for level := 1; level <= 9; level++ {
		var want bytes.Buffer
		w, _ := gzip.NewWriterLevel(&want, level)
		_, _ = w.Write(raw)
		_ = w.Close()
		// Pooled writers are reset, never reused across levels: the bytes are compress/gzip's at that level.
		for range 3 {
			if got := encodePayload(raw, uint32(level)); !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("level %d: not compress/gzip's output at that level", level)
			}
		}
	}
}

func TestDecodeRefusesBadPayloadsWithPythonsMessages(t *testing.T) {
	valid := encodePayload(textSample(100), 6)
	bomb := encodePayload(make([]byte, 2<<20), 9)
	cases := []struct {
		name  string
		data  []byte
		level uint32
		limit int64
		want  string
	}{
		{"not gzip", []byte("definitely not gzip data"), 6, maxInflatedBytes, "payload is not valid gzip data"},
		{"truncated", valid[:len(valid)-20], 6, maxInflatedBytes, "payload gzip stream is truncated"},
		{"empty", nil, 6, maxInflatedBytes, "payload gzip stream is truncated"},
		{"level 10", nil, 10, maxInflatedBytes, "payload_gzip_level must be 0-9, got 10"},
		{"inflate limit", bomb, 9, 1 << 20, "payload inflates past 1048576 bytes"},
	}
	for _, c := range cases {
		_, err := decodePayload(c.data, c.level, c.limit)
		var perr *payloadError
		if !errors.As(err, &perr) || !strings.HasPrefix(perr.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
	// Exactly at the limit is fine; bytes after the gzip member are ignored, as zlib ignores them.
	if _, err := decodePayload(bomb, 9, 2<<20); err != nil {
		t.Errorf("at the limit: %v", err)
	}
	if got, err := decodePayload(append(bytes.Clone(valid), "trailing"...), 6, maxInflatedBytes); err != nil || !bytes.Equal(got, textSample(100)) {
		t.Errorf("trailing bytes: %v", err)
	}
}

func TestPrefixBuffersKeepEveryPrefix(t *testing.T) {
	b, err := newBodies(writeCorpus(t))
	if err != nil {
		t.Fatal(err)
	}
	small := bytes.Clone(b.get(labpb.PayloadKind_PAYLOAD_KIND_RANDOM, 1000))
	big := b.get(labpb.PayloadKind_PAYLOAD_KIND_RANDOM, 100_000) // grows the buffer
	if !bytes.Equal(big[:1000], small) {
		t.Fatal("random: a larger body does not start with the smaller one")
	}
	if len(encodePayload(big, 9)) < len(big) {
		t.Fatal("random: compressible")
	}
	again, _ := newBodies(writeCorpus(t))
	if !bytes.Equal(again.get(labpb.PayloadKind_PAYLOAD_KIND_RANDOM, 100_000), big) {
		t.Fatal("random: not deterministic across servers")
	}
	zeros := b.get(labpb.PayloadKind_PAYLOAD_KIND_ZEROS, 70_000)
	if len(zeros) != 70_000 || !bytes.Equal(zeros, make([]byte, 70_000)) {
		t.Fatal("zeros")
	}
	if text := b.get(labpb.PayloadKind_PAYLOAD_KIND_TEXT, 5); string(text) != "01234" {
		t.Fatalf("text: %q, want the corpus's first bytes", text)
	}
	if got := len(b.get(labpb.PayloadKind_PAYLOAD_KIND_RANDOM, maxResponseSize)); got != maxResponseSize {
		t.Fatalf("largest reply: %d bytes", got)
	}
	// Concurrent growth hands every caller a prefix of one stream (sizes up to 88,000 of big's 100,000).
	again, _ = newBodies(writeCorpus(t))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func(size int) {
			defer wg.Done()
			if got := again.get(labpb.PayloadKind_PAYLOAD_KIND_RANDOM, size); !bytes.Equal(got, big[:size]) {
				t.Errorf("concurrent prefix of %d bytes differs", size)
			}
		}((i + 1) * 11_000)
	}
	wg.Wait()
}

func writeCorpus(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "corpus")
	data := bytes.Repeat([]byte("0123456789"), maxResponseSize/10+1)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCorpusMustCoverTheLargestReply(t *testing.T) {
	short := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(short, []byte("too short"), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"": "required", short: "needs 33554432", "/nonexistent": "no such file"} {
		if _, err := newBodies(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", path, err, want)
		}
	}
}
