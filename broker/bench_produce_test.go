package broker

import (
	"encoding/binary"
	"fmt"
	"io"
	stdnet "net"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core/record"
)

// BenchmarkProducePath measures the broker's produce path alone: a raw
// Kafka client sends Produce v7 requests of one prebuilt 1 MiB batch of
// 1 KiB records over loopback TCP, with acks=1 or acks=all and up to 5 in
// flight, so that the CPU profile is the broker's (decode, CRC check,
// append, group commit, answer) and not a client's record building. One op
// is one request answered. Besides the wall time it reports cpu-ns/op, the
// process's CPU (user and system, from getrusage) per request: the raw
// client's share is small and equal in an A/B comparison, and on the
// shared 2-core machine the CPU a request costs varies much less than its
// wall time.
func BenchmarkProducePath(b *testing.B) {
	r := startNode(&testing.T{}, b.TempDir(), nil)
	defer r.stop()
	recs := make([]record.Record, 1000)
	value := make([]byte, 1024)
	for i := range recs {
		recs[i] = record.Record{Value: value, Timestamp: 1}
	}
	batch, err := record.AppendBatch(nil, record.NewBatchSpec(record.CodecNone), recs)
	if err != nil {
		b.Fatal(err)
	}
	for _, acks := range []int16{1, -1} {
		b.Run(fmt.Sprintf("acks=%d", acks), func(b *testing.B) {
			topic := fmt.Sprintf("produce%d", -acks)
			createTopicOn(b, r.addr, topic)
			conn, err := stdnet.Dial("tcp", r.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			req := kmsg.NewPtrProduceRequest()
			req.SetVersion(7)
			req.Acks, req.TimeoutMillis = acks, 30_000
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = topic
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Records = batch
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			request := kmsg.NewRequestFormatter().AppendRequest(nil, req, 1)
			var response []byte
			inFlight := 0
			b.SetBytes(int64(len(batch)))
			cpuBefore := processCPU(b)
			b.ResetTimer()
			for b.Loop() {
				for inFlight < 5 {
					if _, err := conn.Write(request); err != nil {
						b.Fatal(err)
					}
					inFlight++
				}
				if response, err = readResponseFrame(conn, response); err != nil {
					b.Fatal(err)
				}
				inFlight--
				resp := kmsg.NewPtrProduceResponse()
				resp.SetVersion(7)
				if err := resp.ReadFrom(response[4:]); err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
					b.Fatalf("produce answer: %v %+v", err, resp.Topics)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(processCPU(b)-cpuBefore)/float64(b.N), "cpu-ns/op")
			for ; inFlight > 0; inFlight-- {
				if response, err = readResponseFrame(conn, response); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// processCPU is the CPU, user and system, this process used so far.
func processCPU(b *testing.B) time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		b.Fatal(err)
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

// readResponseFrame reads one size-prefixed response into buf's storage.
func readResponseFrame(conn stdnet.Conn, buf []byte) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(size[:]))
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err := io.ReadFull(conn, buf)
	return buf, err
}

// createTopicOn creates a topic of one partition through CreateTopics v7.
func createTopicOn(b *testing.B, addr, topic string) {
	conn, err := stdnet.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(4)
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 1, 1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10_000
	if _, err := conn.Write(kmsg.NewRequestFormatter().AppendRequest(nil, req, 1)); err != nil {
		b.Fatal(err)
	}
	frame, err := readResponseFrame(conn, nil)
	if err != nil {
		b.Fatal(err)
	}
	resp := kmsg.NewPtrCreateTopicsResponse()
	resp.SetVersion(4)
	if err := resp.ReadFrom(frame[4:]); err != nil || resp.Topics[0].ErrorCode != 0 {
		b.Fatalf("create %s: %v %+v", topic, err, resp.Topics)
	}
}
