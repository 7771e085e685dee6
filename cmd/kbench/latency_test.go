package main

import (
	"encoding/binary"
	"math"
	stdnet "net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/core/record"
)

// testBatch is a record batch of count 10-byte records based at base.
func testBatch(t *testing.T, base int64, count int) []byte {
	t.Helper()
	recs := make([]record.Record, count)
	for i := range recs {
		recs[i] = record.Record{Value: make([]byte, 10)}
	}
	batch, err := record.AppendBatch(nil, record.NewBatchSpec(record.CodecNone), recs)
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint64(batch, uint64(base))
	return batch
}

// responseFrame encodes resp as a broker would: size, correlation id, the
// header's tagged fields when flexible, then the body.
func responseFrame(correlationID int32, resp kmsg.Response) []byte {
	body := binary.BigEndian.AppendUint32(nil, uint32(correlationID))
	if resp.IsFlexible() {
		body = append(body, 0)
	}
	body = resp.AppendTo(body)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// pipeConn is one end of an in-memory connection, for the tap to wrap.
func pipeConn(t *testing.T) (client, server stdnet.Conn) {
	t.Helper()
	client, server = stdnet.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestWireTapFollowsProduceAndFetch writes a flexible Produce request and
// a Fetch request through a tapped connection, in pieces, answers them
// with responses cut at odd places, and checks that the tap marks the
// produced offsets as written and answered and the fetched ones as
// fetched, at the times of the writes and reads that completed them.
func TestWireTapFollowsProduceAndFetch(t *testing.T) {
	tap := newWireTap(time.Now().Add(-time.Second))
	clientEnd, serverEnd := pipeConn(t)
	conn := &tappedConn{Conn: clientEnd, tap: tap, pending: map[int32]*pendingRequest{}}
	formatter := kmsg.NewRequestFormatter(kmsg.FormatterClientID("kbench"))

	produce := kmsg.NewPtrProduceRequest()
	produce.SetVersion(9) // flexible: request header v2
	topic := kmsg.NewProduceRequestTopic()
	partition := kmsg.NewProduceRequestTopicPartition()
	partition.Partition, partition.Records = 3, testBatch(t, 0, 4)
	topic.Partitions = append(topic.Partitions, partition)
	produce.Topics = append(produce.Topics, topic)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.SetVersion(12)
	requests := append(formatter.AppendRequest(nil, produce, 7), formatter.AppendRequest(nil, fetch, 8)...)

	produceResp := produce.ResponseKind().(*kmsg.ProduceResponse)
	responseTopic := kmsg.NewProduceResponseTopic()
	responsePartition := kmsg.NewProduceResponseTopicPartition()
	responsePartition.Partition, responsePartition.BaseOffset = 3, 40
	responseTopic.Partitions = append(responseTopic.Partitions, responsePartition)
	produceResp.Topics = append(produceResp.Topics, responseTopic)
	fetchResp := fetch.ResponseKind().(*kmsg.FetchResponse)
	fetchTopic := kmsg.NewFetchResponseTopic()
	fetchPartition := kmsg.NewFetchResponseTopicPartition()
	fetchPartition.Partition = 3
	fetchPartition.RecordBatches = append(testBatch(t, 40, 4), testBatch(t, 44, 2)...)
	fetchTopic.Partitions = append(fetchTopic.Partitions, fetchPartition)
	fetchResp.Topics = append(fetchResp.Topics, fetchTopic)
	responses := append(responseFrame(7, produceResp), responseFrame(8, fetchResp)...)

	go func() {
		buf := make([]byte, len(requests))
		if _, err := readFull(serverEnd, buf); err != nil {
			return
		}
		for _, piece := range [][]byte{responses[:3], responses[3:50], responses[50:]} {
			if _, err := serverEnd.Write(piece); err != nil {
				return
			}
		}
	}()
	// The request is written in two calls, cut inside the first frame:
	// the tap must still find both.
	if _, err := conn.Write(requests[:5]); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(requests[5:]); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(responses))
	if _, err := readFull(conn, buf); err != nil {
		t.Fatal(err)
	}
	if tap.failure != nil {
		t.Fatalf("tap failed: %v", tap.failure)
	}
	for _, check := range []struct {
		name     string
		timeline tapTimeline
		offsets  []int64
	}{
		{"written", tap.written, []int64{40, 41, 42, 43}},
		{"answered", tap.answered, []int64{40, 43}},
		{"fetched", tap.fetched, []int64{40, 43, 44, 45}},
	} {
		for _, offset := range check.offsets {
			if check.timeline.at(3, offset) < int32(time.Second/time.Microsecond) {
				t.Errorf("%s: offset %d marked %d µs, want at least a second after the tap's start", check.name, offset, check.timeline.at(3, offset))
			}
		}
		if check.timeline.at(3, 46) != 0 || check.timeline.at(3, 39) != 0 || check.timeline.at(2, 40) != 0 {
			t.Errorf("%s: offsets that no frame carried are marked", check.name)
		}
	}
	if len(conn.pending) != 0 {
		t.Errorf("%d requests still pending after their responses", len(conn.pending))
	}
}

func readFull(conn stdnet.Conn, buf []byte) (int, error) {
	read := 0
	for read < len(buf) {
		n, err := conn.Read(buf[read:])
		read += n
		if err != nil {
			return read, err
		}
	}
	return read, nil
}

// TestWireTapStopsOnUnknownResponse: a response the tap never saw a
// request for means it lost the frame boundaries; it must say so rather
// than mark wrong offsets.
func TestWireTapStopsOnUnknownResponse(t *testing.T) {
	tap := newWireTap(time.Now())
	conn := &tappedConn{tap: tap, pending: map[int32]*pendingRequest{}}
	frame := responseFrame(99, kmsg.NewPtrProduceResponse())
	if err := conn.incoming.feed(frame, func(f []byte) error { return conn.responseRead(f, 5) }); err == nil ||
		!strings.Contains(err.Error(), "unknown correlation id 99") {
		t.Errorf("feed = %v, want an unknown correlation id error", err)
	}
	var f frameReader
	if err := f.feed([]byte{0x80, 0, 0, 0}, func([]byte) error { return nil }); err == nil {
		t.Error("a negative frame size was accepted")
	}
}

// TestStagesOfRecords checks the stage arithmetic on a hand-made run: a
// record due at 1 ms, handed at 1.2 ms, written at 1.5 ms, answered at
// 2.5 ms, fetched at 3 ms and polled at 3.1 ms, with the tap's clock 100 µs
// ahead of the run's.
func TestStagesOfRecords(t *testing.T) {
	run := &latencyRun{rate: 1000, tap: newWireTap(time.Now()), tapLag: 100,
		handed: []int32{1, 1200}, polled: []int32{900, 3100}, partition: []int32{0, 0}, offset: []int64{0, 1}}
	run.tap.written.set(0, 0, 1, 1600)
	run.tap.answered.set(0, 1, 1, 2600)
	run.tap.fetched.set(0, 1, 1, 3100)
	got := run.stagesOf(1)
	want := [stageCount]time.Duration{200 * time.Microsecond, 300 * time.Microsecond, time.Millisecond,
		1500 * time.Microsecond, 100 * time.Microsecond, 2100 * time.Microsecond}
	if got != want {
		t.Errorf("stages = %v, want %v", got, want)
	}
	rep := run.report()
	if rep.records != 2 || !rep.tapped || rep.quantiles[stageEndToEnd][1] != 2100*time.Microsecond || rep.tail[stageAnswer] != time.Millisecond {
		t.Errorf("report = %+v", rep)
	}
}

// TestParseRates checks --latency-rates.
func TestParseRates(t *testing.T) {
	rates, err := parseRates("1000, half,2.5e5")
	if err != nil || len(rates) != 3 || rates[0].perSecond != 1000 || !rates[1].half || rates[2].perSecond != 250_000 {
		t.Fatalf("parseRates = %+v, %v", rates, err)
	}
	for _, bad := range []string{"", "0", "fast", "1e9", "NaN"} {
		if _, err := parseRates(bad); err == nil {
			t.Errorf("parseRates(%q) accepted", bad)
		}
	}
	opts, err := parseFlags([]string{"--latency-rates", "half", "--linger", "0"})
	if err != nil || len(opts.latencyRates) != 1 || opts.linger != 0 {
		t.Fatalf("parseFlags: %+v, %v", opts, err)
	}
	if _, err := parseFlags([]string{"--linger", "-1ms"}); err == nil {
		t.Error("a negative linger was accepted")
	}
}

// TestParseMetrics reads two histograms from the Prometheus text format
// and checks the difference of two scrapes and its quantile bounds.
func TestParseMetrics(t *testing.T) {
	scrape := func(fast, slow float64) brokerMetrics {
		text := strings.Join([]string{
			"# HELP kafkasim_log_sync_latency_seconds group-commit fsync latency",
			`kafkasim_log_sync_latency_seconds_bucket{le="0.0005"} ` + ftoa(fast),
			`kafkasim_log_sync_latency_seconds_bucket{le="0.005"} ` + ftoa(fast+slow),
			`kafkasim_log_sync_latency_seconds_bucket{le="+Inf"} ` + ftoa(fast+slow),
			"kafkasim_log_sync_latency_seconds_sum " + ftoa(fast*0.0004+slow*0.004),
			"kafkasim_log_sync_latency_seconds_count " + ftoa(fast+slow),
			`kafkasim_request_latency_seconds_bucket{api="Fetch",le="0.0005"} 1000`,
			`kafkasim_request_latency_seconds_bucket{api="Produce",le="0.0005"} 7`,
			`kafkasim_request_latency_seconds_bucket{api="Produce",le="+Inf"} 7`,
			`kafkasim_request_latency_seconds_count{api="Produce"} 7`,
		}, "\n")
		m, err := parseMetrics(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	before, after := scrape(10, 0), scrape(108, 2)
	sync := after.syncLatency.minus(before.syncLatency)
	if sync.count != 100 || sync.quantileBound(0.5) != 500*time.Microsecond || sync.quantileBound(0.99) != 5*time.Millisecond {
		t.Errorf("sync difference %+v: p50 %v, p99 %v", sync, sync.quantileBound(0.5), sync.quantileBound(0.99))
	}
	if after.produceLatency.count != 7 || len(after.produceLatency.counts) != 2 {
		t.Errorf("produce latency read %+v, want only the Produce series", after.produceLatency)
	}
}

func ftoa(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// TestLatencySummaryIsTheMedianOfRuns: repeated runs at one rate report
// the median of every figure, and a run whose tap failed marks the stages
// unknown; broker views add up.
func TestLatencySummaryIsTheMedianOfRuns(t *testing.T) {
	l := &latencyResult{rate: 10}
	for _, p99 := range []time.Duration{1, 5, 3} {
		run := stageReport{records: 10, tapped: true}
		run.quantiles[stageEndToEnd][1] = p99
		run.tail[stageAnswer] = 2 * p99
		l.runs = append(l.runs, run)
	}
	got := l.summary()
	if got.quantiles[stageEndToEnd][1] != 3 || got.tail[stageAnswer] != 6 || got.records != 30 || !got.tapped {
		t.Errorf("summary = %+v, want p99 3, tail 6, 30 records, tapped", got)
	}
	l.runs[1].tapped, l.runs[1].tapError = false, "lost"
	if got := l.summary(); got.tapped || got.tapError != "lost" {
		t.Errorf("a run without its tap left the summary tapped: %+v", got)
	}
	var view brokerView
	one := histogram{bounds: []float64{0.001, math.Inf(1)}, counts: []float64{2, 3}, sum: 0.004, count: 3}
	view.add(brokerMetrics{syncLatency: one})
	view.add(brokerMetrics{syncLatency: one})
	if sync := view.syncLatency; !view.known || sync.count != 6 || sync.counts[0] != 4 || sync.quantileBound(0.99) != time.Duration(math.MaxInt64) {
		t.Errorf("two runs' views add to %+v", sync)
	}
}
