package main

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"grpclab/servers/go/gen/labpb"
)

// buildRecords is records.py's build written plainly: records are added while the next one brings the
// serialized size closer. The cache must hand out the same messages, whatever order sizes are asked in.
func buildRecords(size int) *labpb.Records {
	out := &labpb.Records{}
	for proto.Size(out) < size {
		grown := &labpb.Records{Records: append(out.GetRecords()[:len(out.GetRecords()):len(out.GetRecords())], recordAt(int64(len(out.GetRecords()))))}
		if proto.Size(grown)-size >= size-proto.Size(out) {
			break
		}
		out = grown
	}
	return out
}

func TestRecordCacheGivesTheClosestPrefixInAnyOrder(t *testing.T) {
	var cache recordCache
	for _, size := range []int{1024, 0, 1, 89, 91, 100, 65536, 5000, 1024, 200_000, 180, 181, 400} {
		got, want := cache.get(size), buildRecords(size)
		if !proto.Equal(got, want) {
			t.Fatalf("size %d: %d records (%d B), want %d (%d B)", size, len(got.GetRecords()), proto.Size(got),
				len(want.GetRecords()), proto.Size(want))
		}
		if d := proto.Size(got) - size; size > 0 && len(got.GetRecords()) > 0 && (d > 120 || d < -120) {
			t.Fatalf("size %d: %d B, more than half a record away", size, proto.Size(got))
		}
	}
}

func TestRecordsReplyRefusesAppGzip(t *testing.T) {
	l := &lab{}
	if _, err := l.replyPayload(1024, labpb.PayloadKind_PAYLOAD_KIND_RECORDS, 6); err == nil {
		t.Fatal("RECORDS with payload_gzip_level 6: no error")
	}
	r, err := l.replyPayload(1024, labpb.PayloadKind_PAYLOAD_KIND_RECORDS, 0)
	if err != nil || len(r.records.GetRecords()) != 5 || r.body != nil {
		t.Fatalf("RECORDS 1 KiB: %v records, body %d B, err %v; want 5 records (as Python's), no body", len(r.records.GetRecords()), len(r.body), err)
	}
}
