package broker

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	stdnet "net"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core/record"
)

// fetchBenchLogBytes is how much BenchmarkFetchPath stores before it
// reads: enough that the reads cycle through far more than one fetch.
const fetchBenchLogBytes = 256 << 20

// BenchmarkFetchPath measures the broker's consume path alone: a raw
// Kafka client sends Fetch v12 requests over loopback TCP, one at a time
// like a consumer, and reads each response without decoding records, so
// that the CPU profile is the broker's (read, CRC check, encode, writev)
// and not a client's decompression. One op is one fetch of up to
// fetch-bytes of 1 KiB records; the log is read from the start again when
// the reads reach its end.
func BenchmarkFetchPath(b *testing.B) {
	r := startNode(&testing.T{}, b.TempDir(), nil)
	defer r.stop()
	fillTopic(b, r.addr, "fetch", fetchBenchLogBytes, 1024)
	for _, fetchBytes := range []int32{1 << 20, 16 << 20} {
		b.Run(fmt.Sprintf("fetch-bytes=%dMiB", fetchBytes>>20), func(b *testing.B) {
			conn, err := stdnet.Dial("tcp", r.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			client := rawFetcher{conn: conn, fetchBytes: fetchBytes}
			var total int64
			b.ResetTimer()
			for b.Loop() {
				n, err := client.fetch()
				if err != nil {
					b.Fatal(err)
				}
				total += int64(n)
			}
			b.ReportMetric(float64(total)/float64(1<<20)/b.Elapsed().Seconds(), "MiB/s")
		})
	}
}

// fillTopic produces about logBytes of valueBytes records to a new topic
// of one partition (uncompressed, so that the fetched bytes are the
// records' bytes).
func fillTopic(b *testing.B, addr, topic string, logBytes, valueBytes int) {
	producer, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(1<<16), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		b.Fatal(err)
	}
	defer producer.Close()
	value := make([]byte, valueBytes)
	var wg sync.WaitGroup
	for range logBytes / valueBytes {
		wg.Add(1)
		producer.Produce(context.Background(), &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				panic(err)
			}
			wg.Done()
		})
	}
	wg.Wait()
}

// rawFetcher is a minimal consumer of partition 0 of topic "fetch".
type rawFetcher struct {
	conn       stdnet.Conn
	fetchBytes int32
	offset     int64
	request    []byte
	response   []byte
}

// fetch sends one Fetch and reads its answer; it returns the record bytes
// received and moves the offset past them (to 0 at the log's end).
func (f *rawFetcher) fetch() (int, error) {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 500, 1, f.fetchBytes
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "fetch"
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = f.offset, f.fetchBytes, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	f.request = kmsg.NewRequestFormatter().AppendRequest(f.request[:0], req, 1)
	if _, err := f.conn.Write(f.request); err != nil {
		return 0, err
	}
	var size [4]byte
	if _, err := io.ReadFull(f.conn, size[:]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint32(size[:]))
	if cap(f.response) < n {
		f.response = make([]byte, n)
	}
	f.response = f.response[:n]
	if _, err := io.ReadFull(f.conn, f.response); err != nil {
		return 0, err
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(12)
	if err := resp.UnsafeReadFrom(f.response[5:]); err != nil {
		return 0, err
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		return 0, fmt.Errorf("fetch at %d: error %d", f.offset, p.ErrorCode)
	}
	data := p.RecordBatches
	for len(data) >= record.HeaderBytes {
		h, err := record.ParseHeader(data)
		if err != nil || h.TotalBytes() > len(data) {
			break
		}
		f.offset = h.NextOffset()
		data = data[h.TotalBytes():]
	}
	if f.offset >= p.HighWatermark {
		f.offset = 0
	}
	return len(p.RecordBatches), nil
}
