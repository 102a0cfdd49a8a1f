package main

// Payload bodies and the lab's app-level gzip: the Go twin of servers/payloads.py.
//
// The text body is the Python lab's own: `grpclab serve --impl go` writes payloads.make("text", 32 MiB)
// to a cache file once and passes it here (--text-corpus). Python's generator is deterministic and each
// size is a prefix of every larger size, so a prefix of the corpus is byte for byte what a Python server
// sends: compression figures compare the two servers on identical data.

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"grpclab/servers/go/gen/labpb"
)

const (
	// Refuse to inflate a request payload past this many bytes (payloads.MAX_INFLATED_BYTES).
	maxInflatedBytes = 64 << 20
	// Upper bound on a reply payload a request may ask for (logic.MAX_RESPONSE_SIZE); also the corpus size.
	maxResponseSize = 32 << 20
)

// payloadError is a payload the server cannot accept; the handlers turn it into INVALID_ARGUMENT.
type payloadError struct{ msg string }

func (e *payloadError) Error() string { return e.msg }

func checkLevel(level uint32) error {
	if level > 9 {
		return &payloadError{fmt.Sprintf("payload_gzip_level must be 0-9, got %d", level)}
	}
	return nil
}

// bodies hands out the reply payload bodies: slices of buffers that are never written after they are
// published, so every RPC shares them without copying (as Python's lru_cache shares its bytes objects).
type bodies struct {
	text   []byte // the mapped corpus: pages become resident only as replies touch them
	zeros  prefixBuffer
	random prefixBuffer
}

func newBodies(corpusPath string) (*bodies, error) {
	text, err := mapCorpus(corpusPath)
	if err != nil {
		return nil, err
	}
	// "random" is Go's own deterministic stream (ChaCha8, fixed seed), not Python's Mersenne Twister
	// bytes: the figures only need it incompressible, which it is either way.
	stream := rand.NewChaCha8([32]byte{})
	b := &bodies{text: text}
	b.zeros.fill = func([]byte) {} // new Go memory is already zero
	b.random.fill = func(dst []byte) { _, _ = stream.Read(dst) }
	return b, nil
}

func mapCorpus(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("--text-corpus: required (start the server with `grpclab serve --impl go`, which writes it)")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--text-corpus: %v", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("--text-corpus: %v", err)
	}
	if info.Size() < maxResponseSize {
		return nil, fmt.Errorf("--text-corpus: %s has %d bytes, needs %d (grpclab serve --impl go writes it)",
			path, info.Size(), maxResponseSize)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, maxResponseSize, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("--text-corpus: cannot map %s: %v", path, err)
	}
	return data, nil
}

// get returns the first size bytes of the kind's body; size <= maxResponseSize (checked by the caller).
func (b *bodies) get(kind labpb.PayloadKind, size int) []byte {
	switch kind {
	case labpb.PayloadKind_PAYLOAD_KIND_TEXT:
		return b.text[:size:size]
	case labpb.PayloadKind_PAYLOAD_KIND_RANDOM:
		return b.random.prefix(size)
	default:
		return b.zeros.prefix(size)
	}
}

// prefixBuffer grows on demand (memory follows the largest reply asked for, as in the Python servers)
// and keeps every earlier prefix: a published buffer is never modified, a larger one replaces it.
type prefixBuffer struct {
	current atomic.Pointer[[]byte]
	mu      sync.Mutex
	fill    func(dst []byte) // writes the next len(dst) bytes of the body's stream
}

func (p *prefixBuffer) prefix(size int) []byte {
	if cur := p.current.Load(); cur != nil && len(*cur) >= size {
		return (*cur)[:size:size]
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var old []byte
	if cur := p.current.Load(); cur != nil {
		if len(*cur) >= size {
			return (*cur)[:size:size]
		}
		old = *cur
	}
	grown := make([]byte, min(max(size, 2*len(old), 4096), maxResponseSize))
	copy(grown, old)
	p.fill(grown[len(old):])
	p.current.Store(&grown)
	return grown[:size:size]
}

// gzip writers and readers are pooled, one pool per level: what a Go server that compresses every
// message would do. The output is a real gzip member at that level, as Python's zlib writes (the
// bytes differ: Go's deflate is its own implementation, and it writes OS byte 255 where zlib writes 3).
var gzipWriters [10]sync.Pool

func init() {
	for level := 1; level <= 9; level++ {
		gzipWriters[level].New = func() any {
			w, err := gzip.NewWriterLevel(io.Discard, level)
			if err != nil {
				panic(err) // levels 1-9 are valid
			}
			return w
		}
	}
}

var gzipReaders sync.Pool

// encodePayload: level 0 sends raw as is; 1-9 gzip-compresses it at that level.
func encodePayload(raw []byte, level uint32) []byte {
	if level == 0 {
		return raw
	}
	var out bytes.Buffer
	out.Grow(len(raw)/2 + 64)
	w := gzipWriters[level].Get().(*gzip.Writer)
	w.Reset(&out)
	_, _ = w.Write(raw) // writes to a bytes.Buffer cannot fail
	_ = w.Close()
	w.Reset(io.Discard) // a pooled writer must not keep this reply's buffer alive
	gzipWriters[level].Put(w)
	return out.Bytes()
}

// decodePayload is the inverse of encodePayload; a corrupt, truncated or oversized payload is a
// *payloadError with the message servers/payloads.py gives.
func decodePayload(data []byte, level uint32, limit int64) ([]byte, error) {
	if err := checkLevel(level); err != nil {
		return nil, err
	}
	if level == 0 {
		return data, nil
	}
	r, _ := gzipReaders.Get().(*gzip.Reader)
	var err error
	if r == nil {
		r, err = gzip.NewReader(bytes.NewReader(data))
	} else {
		err = r.Reset(bytes.NewReader(data))
	}
	if err != nil {
		return nil, inflateError(err)
	}
	defer gzipReaders.Put(r)
	// One gzip member, as zlib with wbits 31 reads it: bytes after it are ignored, not a second member.
	r.Multistream(false)
	raw, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, inflateError(err)
	}
	if int64(len(raw)) > limit {
		return nil, &payloadError{fmt.Sprintf("payload inflates past %d bytes", limit)}
	}
	return raw, nil
}

func inflateError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &payloadError{"payload gzip stream is truncated"}
	}
	return &payloadError{fmt.Sprintf("payload is not valid gzip data: %v", err)}
}
