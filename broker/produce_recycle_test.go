package broker

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkasim/kafkasim/core"
	knet "github.com/kafkasim/kafkasim/net"
)

// recyclingConn is what a net.TCP connection offers the broker: core.Conn,
// the frame recycling, the written-frame counts the fetch path reuses its
// response frames by (frameTracker), and the count of frames read into
// recycled ones.
type recyclingConn interface {
	core.Conn
	core.FrameRecycler
	frameTracker
	FramesReused() uint64
}

// poisoningTCP is a net.TCP whose accepted connections fill every frame
// the broker recycles with poisonByte before the network may reuse it. A
// frame recycled while something still references it then shows at once,
// and whatever the timing, as changed bytes (a CRC the client refuses, a
// record that differs), instead of only when the network happens to read
// the next request into it before the reference is used.
type poisoningTCP struct {
	*knet.TCP
	mu    sync.Mutex
	conns []recyclingConn
}

const poisonByte = 0xEE

func (p *poisoningTCP) Listen(addr string, accept func(core.Conn) core.ConnHandler) (core.Listener, error) {
	return p.TCP.Listen(addr, func(c core.Conn) core.ConnHandler {
		inner := c.(recyclingConn)
		p.mu.Lock()
		p.conns = append(p.conns, inner)
		p.mu.Unlock()
		return accept(poisoningConn{inner})
	})
}

// framesReused sums the frames the accepted connections read into
// recycled ones.
func (p *poisoningTCP) framesReused() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var total uint64
	for _, c := range p.conns {
		total += c.FramesReused()
	}
	return total
}

type poisoningConn struct{ recyclingConn }

func (c poisoningConn) RecycleFrame(frame []byte) {
	for i := range frame {
		frame[i] = poisonByte
	}
	c.recyclingConn.RecycleFrame(frame)
}

// startPoisoningNode is startNode with the network wrapped in poisoningTCP.
func startPoisoningNode(t *testing.T, configure func(*Config)) (*runningNode, *poisoningTCP) {
	t.Helper()
	var network *poisoningTCP
	r := startNodeOn(t, t.TempDir(), configure, func(tcp *knet.TCP) core.Network {
		network = &poisoningTCP{TCP: tcp}
		return network
	})
	return r, network
}

// recycleValue is the value of record seq of producer, of size bytes:
// every other byte from a xorshift generator seeded by the two, the others
// the sequence number's low byte, so that values compress a little and no
// two are alike.
func recycleValue(producer, seq, size int) []byte {
	value := make([]byte, size)
	state := uint64(producer+1)<<32 | uint64(seq+1)
	for i := range value {
		if i%2 == 1 {
			value[i] = byte(seq)
			continue
		}
		state ^= state << 13
		state ^= state >> 7
		state ^= state << 17
		value[i] = byte(state)
	}
	return value
}

// recycleValueBytes is the size of record seq: mostly up to 4 KiB, every
// 25th from 64 KiB to about 320 KiB, so that requests range from one small
// batch to several batches of about 1 MiB (frames below and above the
// network's 1 MiB chunk).
func recycleValueBytes(seq int) int {
	if seq%25 == 0 {
		return 64<<10 + (seq*7919)%(256<<10)
	}
	return 1 + (seq*104729)%(4<<10)
}

// waitOrDone waits for wg, or returns the context's error once it is done
// (a broker that refuses the records can leave kgo retrying them until the
// hang guard).
func waitOrDone(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// firstErrors returns up to three errors waiting in errs.
func firstErrors(errs chan error) []error {
	var first []error
	for len(first) < 3 {
		select {
		case err := <-errs:
			first = append(first, err)
		default:
			return first
		}
	}
	return first
}

// TestRecycledProduceFramesKeepEveryRecord checks that recycling Produce
// frames (conn.recycleProduceFrame) never lets the broker keep or serve
// bytes of a recycled frame: over the real network, with every recycled
// frame poisoned before reuse (poisoningTCP), seven concurrent kgo
// producers, one connection each, write records of 1 B to 320 KiB with
// acks=0, 1 and all, idempotent and not, with and without client
// compression, several requests in flight per connection, to three topics
// of three partitions that keep the producer's batches, recompress them
// with zstd, and decompress them with log append time. A consumer then reads every
// record back (kgo checks each batch's CRC) and each must carry the value
// sent with its key. Some frames must have been reused, or the test proved
// nothing.
func TestRecycledProduceFramesKeepEveryRecord(t *testing.T) {
	r, network := startPoisoningNode(t, nil)
	ctx := testContext(t)
	admin := kadm.NewClient(newClient(t, r.addr))
	topics := []struct {
		name    string
		configs map[string]*string
	}{
		{"as-produced", nil},
		{"recompressed", map[string]*string{"compression.type": kadm.StringPtr("zstd")}},
		{"decompressed", map[string]*string{"compression.type": kadm.StringPtr("uncompressed"),
			"message.timestamp.type": kadm.StringPtr("LogAppendTime")}},
	}
	for _, topic := range topics {
		if _, err := admin.CreateTopic(ctx, 3, 1, topic.configs, topic.name); err != nil {
			t.Fatalf("create %s: %v", topic.name, err)
		}
	}
	producers := []struct {
		name string
		opts []kgo.Opt
	}{
		{"acks=all idempotent snappy", []kgo.Opt{kgo.ProducerBatchCompression(kgo.SnappyCompression())}},
		{"acks=all idempotent none", []kgo.Opt{kgo.ProducerBatchCompression(kgo.NoCompression())}},
		{"acks=all lz4", []kgo.Opt{kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(5),
			kgo.ProducerBatchCompression(kgo.Lz4Compression())}},
		{"acks=1 zstd", []kgo.Opt{kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.LeaderAck()),
			kgo.MaxProduceRequestsInflightPerBroker(5), kgo.ProducerBatchCompression(kgo.ZstdCompression())}},
		{"acks=1 none", []kgo.Opt{kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.LeaderAck()),
			kgo.MaxProduceRequestsInflightPerBroker(5), kgo.ProducerBatchCompression(kgo.NoCompression())}},
		{"acks=0 gzip", []kgo.Opt{kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.NoAck()),
			kgo.MaxProduceRequestsInflightPerBroker(5), kgo.ProducerBatchCompression(kgo.GzipCompression())}},
		{"acks=0 none", []kgo.Opt{kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.NoAck()),
			kgo.MaxProduceRequestsInflightPerBroker(5), kgo.ProducerBatchCompression(kgo.NoCompression())}},
	}
	const perProducer, recordsPerRound = 300, 4
	var wg sync.WaitGroup
	errs := make(chan error, len(producers)*perProducer)
	for p, producer := range producers {
		cl := newClient(t, r.addr, producer.opts...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Rounds of a few records, each handed to kgo while the two
			// rounds before it may still be in flight: many requests per
			// connection, several of them pipelined.
			var rounds [3]sync.WaitGroup
			for seq := range perProducer {
				round := &rounds[seq/recordsPerRound%len(rounds)]
				if seq%recordsPerRound == 0 && waitOrDone(ctx, round) != nil {
					return // the test fails below
				}
				rec := &kgo.Record{
					Topic: topics[seq%len(topics)].name,
					Key:   fmt.Appendf(nil, "%d-%d", p, seq),
					Value: recycleValue(p, seq, recycleValueBytes(seq)),
				}
				round.Add(1)
				cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
					defer round.Done()
					if err != nil {
						errs <- fmt.Errorf("%s: record %d: %w", producer.name, seq, err)
					}
				})
			}
			if err := cl.Flush(ctx); err != nil {
				errs <- fmt.Errorf("%s: flush: %w", producer.name, err)
			}
		}()
	}
	if err := waitOrDone(ctx, &wg); err != nil {
		t.Fatalf("producing: %v (first errors: %v)", err, firstErrors(errs))
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := len(producers) * perProducer
	consumer := newClient(t, r.addr, kgo.ConsumeTopics(topics[0].name, topics[1].name, topics[2].name),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := make(map[string]bool, want)
	for len(seen) < want {
		fetches := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records before the hang guard: %v", len(seen), want, err)
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			t.Fatalf("fetch %s-%d: %v", topic, partition, err)
		})
		for _, rec := range fetches.Records() {
			var p, seq int
			if _, err := fmt.Sscanf(string(rec.Key), "%d-%d", &p, &seq); err != nil || p >= len(producers) || seq >= perProducer {
				t.Fatalf("%s-%d offset %d: unexpected key %q", rec.Topic, rec.Partition, rec.Offset, rec.Key)
			}
			if rec.Topic != topics[seq%len(topics)].name {
				t.Fatalf("record %s in topic %s", rec.Key, rec.Topic)
			}
			if !bytes.Equal(rec.Value, recycleValue(p, seq, recycleValueBytes(seq))) {
				t.Fatalf("%s-%d offset %d: record %s (%s) has a changed value of %d bytes",
					rec.Topic, rec.Partition, rec.Offset, rec.Key, producers[p].name, len(rec.Value))
			}
			seen[string(rec.Key)] = true
		}
	}
	reused := network.framesReused()
	if reused == 0 {
		t.Fatal("no request frame was read into a recycled one: the test proved nothing")
	}
	t.Logf("%d records checked; %d request frames read into recycled ones", len(seen), reused)
}
