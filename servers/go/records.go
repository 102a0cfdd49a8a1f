package main

// Structured payloads (response_kind RECORDS): the Go twin of servers/records.py. Every record is a
// function of its index with integer arithmetic and exactly representable values, so these are the very
// messages a Python server sends: the same count and serialized size for every size asked for.

import (
	"fmt"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"grpclab/servers/go/gen/labpb"
)

var (
	recordWords   = [...]string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"}
	recordStreets = [...]string{"Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel", "India", "Juliet"}
	recordCities  = [...]string{"Berlin", "Lagos", "Lima", "Osaka", "Pune", "Quito", "Riga", "Seoul", "Tunis", "Oslo"}
	recordPlans   = [...]string{"free", "team", "enterprise"}
	recordRegions = [...]string{"eu-west", "us-east", "ap-south", "sa-east"}
	recordSources = [...]string{"web", "ios", "android", "api", "import"}
)

const recordEpochMs = 1_700_000_000_000

// recordAt is record number i (servers/records.py record(i)).
func recordAt(i int64) *labpb.Record {
	tags := make([]string, 3)
	for k := range int64(3) {
		tags[k] = recordWords[(i+k)%10]
	}
	counts := make([]int64, 4)
	for k := int64(1); k <= 4; k++ {
		counts[k-1] = i * k * 31 % 1000
	}
	return &labpb.Record{
		Id:           100_000 + i,
		User:         fmt.Sprintf("%s_%d", recordWords[i%10], i*7919%1_000_000),
		Email:        fmt.Sprintf("%s.%d@example.com", recordWords[i*3%10], i%1000),
		Active:       i%10 < 7,
		Score:        float64(i*7919%100_000) / 100,
		Age:          int32(18 + i%60),
		CreatedAtMs:  uint64(recordEpochMs + i*1000),
		BalanceCents: i*7919%200_001 - 100_000,
		Ratio:        float32(i%64) / 8,
		Tags:         tags,
		Counts:       counts,
		Address: &labpb.Address{
			Street:    fmt.Sprintf("%d %s Street", i*13%999+1, recordStreets[i*7%10]),
			City:      recordCities[i%10],
			Postcode:  fmt.Sprintf("%05d", i*7907%100_000),
			Latitude:  float64(i*104_729%180_000)/1000 - 90,
			Longitude: float64(i*15_485_863%360_000)/1000 - 180,
		},
		Attributes: map[string]string{
			"plan": recordPlans[i%3], "region": recordRegions[i%4], "source": recordSources[i%5],
		},
	}
}

// recordCache hands out the Records message closest to a size (servers/records.py build: records are added
// while the next one brings the serialized size closer). record i does not depend on the size asked for, so
// every size's records are a prefix of one growing list, built once (memory follows the largest reply asked
// for, as the bytes payloads' prefix buffers do). Messages are shared by every reply and never modified after
// they are published: grpc-go only reads a message it marshals.
type recordCache struct {
	mu     sync.Mutex
	items  []*labpb.Record
	ends   []int    // ends[k]: serialized size of the first k records (ends[0] = 0)
	bySize sync.Map // int -> *labpb.Records, for up to maxCachedSizes sizes
	sizes  atomic.Int64
}

const maxCachedSizes = 1024 // each entry is a slice header: bounds the map, not the records

func (c *recordCache) get(size int) *labpb.Records {
	if cached, ok := c.bySize.Load(size); ok {
		return cached.(*labpb.Records)
	}
	records := &labpb.Records{Records: c.prefix(size)}
	if c.sizes.Load() < maxCachedSizes {
		if _, loaded := c.bySize.LoadOrStore(size, records); !loaded {
			c.sizes.Add(1)
		}
	}
	return records
}

// prefix returns the first n records, n chosen as buildRecords in Python chooses it.
func (c *recordCache) prefix(size int) []*labpb.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ends == nil {
		c.ends = []int{0}
	}
	n := 0
	for c.ends[n] < size {
		if n+1 == len(c.ends) {
			item := recordAt(int64(n))
			length := proto.Size(item)
			c.items = append(c.items, item)
			c.ends = append(c.ends, c.ends[n]+1+protowire.SizeVarint(uint64(length))+length) // tag, length, body
		}
		if c.ends[n+1]-size >= size-c.ends[n] {
			break // one more record would land further from the size than we are
		}
		n++
	}
	return c.items[:n:n]
}
