package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	stdnet "net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The wire tap times a record's trip at the client's sockets, without
// changing the client or the server: kbench's franz-go clients dial through
// it, and it reads a copy of every Kafka frame that crosses their
// connections. It notes when the Produce request carrying a record was
// written, when its Produce response was read, and when the first Fetch
// response holding it was read, by partition and offset. These are the
// stage boundaries that franz-go's hooks do not give per record (its
// OnProduceBatchWritten runs after the response, in a goroutine of its own).

// Kafka API keys the tap decodes.
const (
	apiKeyProduce     = 0
	apiKeyFetch       = 1
	apiKeyAPIVersions = 18
)

// frameBytesMax bounds the frames the tap reassembles; a larger size
// means the tap lost the frame boundaries, and it stops.
const frameBytesMax = 1 << 30

// tapTimeline holds, per partition and offset, when a stage of the record
// at that offset happened, in microseconds since the run's start (0: not
// seen).
type tapTimeline map[int32][]int32

// set marks offsets [first, last] of partition at microsecond when they
// have no mark yet: a record's first sighting counts.
func (t tapTimeline) set(partition int32, first, last int64, micros int32) {
	if first < 0 || last < first || last >= 1<<31 {
		return
	}
	marks := t[partition]
	if int64(len(marks)) <= last {
		marks = append(marks, make([]int32, int(last)+1-len(marks))...)
		t[partition] = marks
	}
	for offset := first; offset <= last; offset++ {
		if marks[offset] == 0 {
			marks[offset] = micros
		}
	}
}

// at returns the mark of partition and offset, or 0.
func (t tapTimeline) at(partition int32, offset int64) int32 {
	marks := t[partition]
	if offset < 0 || offset >= int64(len(marks)) {
		return 0
	}
	return marks[offset]
}

// wireTap collects the stage times of every tapped connection.
type wireTap struct {
	start time.Time
	mu    sync.Mutex
	// written is when the Produce request carrying an offset was
	// written, answered when its response was read, fetched when the
	// first Fetch response holding it was read.
	written, answered, fetched tapTimeline
	// failure is the first frame the tap could not follow; stage times
	// are not reported after one.
	failure error
}

func newWireTap(start time.Time) *wireTap {
	return &wireTap{start: start, written: tapTimeline{}, answered: tapTimeline{}, fetched: tapTimeline{}}
}

// micros is the time since the run's start in microseconds, at least 1 so
// that 0 keeps meaning "not seen".
func (w *wireTap) micros(at time.Time) int32 {
	return int32(max(at.Sub(w.start).Microseconds(), 1))
}

// fail keeps the first failure.
func (w *wireTap) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failure == nil {
		w.failure = err
	}
}

// dial is a kgo.Dialer that taps the connections it opens.
func (w *wireTap) dial(ctx context.Context, network, host string) (stdnet.Conn, error) {
	conn, err := (&stdnet.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	return &tappedConn{Conn: conn, tap: w, pending: map[int32]*pendingRequest{}}, nil
}

// option makes a franz-go client dial through the tap.
func (w *wireTap) option() kgo.Opt { return kgo.Dialer(w.dial) }

// pendingRequest is a request written on a connection whose response has
// not been read yet. It is registered before the write starts, because
// the response may be read before the writing goroutine runs again.
type pendingRequest struct {
	key, version int16
	// produced holds, for a Produce request, the records it carried per
	// partition.
	produced map[int32]int64
	// writeStartedAt is when the write carrying the request's last byte
	// started, writtenAt when it returned (0 until then).
	writeStartedAt int32
	writtenAt      atomic.Int32
}

// written is when the request was written: when its write returned, or,
// if the response was read before the writing goroutine noted that, when
// its write started.
func (p *pendingRequest) written() int32 {
	if at := p.writtenAt.Load(); at != 0 {
		return at
	}
	return p.writeStartedAt
}

// tappedConn copies the frames crossing one client connection to the tap.
// A connection's writes come from one goroutine and its reads from one
// other, and the two share only pending, under its lock.
type tappedConn struct {
	stdnet.Conn
	tap             *wireTap
	outgoing        frameReader
	incoming        frameReader
	pendingMu       sync.Mutex
	pending         map[int32]*pendingRequest
	outFail, inFail bool
	// writing holds the requests whose last byte the current write
	// carries.
	writing []*pendingRequest
}

// Write registers the requests that b completes, writes b, and notes
// when the write returned. kgo writes a request in one call, so a request
// the connection only partly took is not expected; if it happens, the
// tap stops following the connection.
func (c *tappedConn) Write(b []byte) (int, error) {
	c.writing = c.writing[:0]
	if !c.outFail {
		at := c.tap.micros(time.Now())
		if err := c.outgoing.feed(b, func(frame []byte) error { return c.requestWriting(frame, at) }); err != nil {
			c.outFail = true
			c.tap.fail(err)
		}
	}
	n, err := c.Conn.Write(b)
	at := c.tap.micros(time.Now())
	for _, request := range c.writing {
		request.writtenAt.Store(at)
	}
	if n < len(b) && !c.outFail {
		c.outFail = true
		c.tap.fail(fmt.Errorf("wire tap: a write took %d of %d bytes", n, len(b)))
	}
	return n, err
}

func (c *tappedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.inFail {
		at := c.tap.micros(time.Now())
		if ferr := c.incoming.feed(b[:n], func(frame []byte) error { return c.responseRead(frame, at) }); ferr != nil {
			c.inFail = true
			c.tap.fail(ferr)
		}
	}
	return n, err
}

// requestWriting registers a request frame (without its size prefix)
// whose write starts at microsecond at.
func (c *tappedConn) requestWriting(frame []byte, at int32) error {
	key, version, correlationID, body, err := parseRequestHeader(frame)
	if err != nil {
		return err
	}
	pending := &pendingRequest{key: key, version: version, writeStartedAt: at}
	if key == apiKeyProduce {
		if pending.produced, err = producedRecords(version, body); err != nil {
			return err
		}
	}
	c.pendingMu.Lock()
	c.pending[correlationID] = pending
	c.pendingMu.Unlock()
	c.writing = append(c.writing, pending)
	return nil
}

// responseRead notes a response frame read at microsecond at.
func (c *tappedConn) responseRead(frame []byte, at int32) error {
	if len(frame) < 4 {
		return errors.New("wire tap: response shorter than its header")
	}
	correlationID := int32(binary.BigEndian.Uint32(frame))
	c.pendingMu.Lock()
	request, ok := c.pending[correlationID]
	delete(c.pending, correlationID)
	c.pendingMu.Unlock()
	if !ok {
		return fmt.Errorf("wire tap: response to unknown correlation id %d", correlationID)
	}
	switch request.key {
	case apiKeyProduce:
		return c.tap.produceAnswered(request, frame[4:], at)
	case apiKeyFetch:
		return c.tap.fetchRead(request.version, frame[4:], at)
	}
	return nil
}

// produceAnswered marks the offsets a Produce response assigned: written
// when its request was written, answered now.
func (w *wireTap) produceAnswered(request *pendingRequest, body []byte, at int32) error {
	resp := kmsg.NewPtrProduceResponse()
	resp.SetVersion(request.version)
	body, err := skipResponseHeaderTags(resp, body)
	if err == nil {
		err = resp.ReadFrom(body)
	}
	if err != nil {
		return fmt.Errorf("wire tap: produce response: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			count := request.produced[p.Partition]
			if p.ErrorCode != 0 || p.BaseOffset < 0 || count == 0 {
				continue
			}
			w.written.set(p.Partition, p.BaseOffset, p.BaseOffset+count-1, request.written())
			w.answered.set(p.Partition, p.BaseOffset, p.BaseOffset+count-1, at)
		}
	}
	return nil
}

// fetchRead marks the offsets of every whole batch a Fetch response holds.
func (w *wireTap) fetchRead(version int16, body []byte, at int32) error {
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(version)
	body, err := skipResponseHeaderTags(resp, body)
	if err == nil {
		err = resp.UnsafeReadFrom(body)
	}
	if err != nil {
		return fmt.Errorf("wire tap: fetch response: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			eachBatch(p.RecordBatches, func(base, last int64) { w.fetched.set(p.Partition, base, last, at) })
		}
	}
	return nil
}

// eachBatch calls visit with the first and last offset of every whole
// record batch in data.
func eachBatch(data []byte, visit func(base, last int64)) {
	for len(data) >= batchHeaderBytes {
		size := batchLengthAt + 4 + int(int32(binary.BigEndian.Uint32(data[batchLengthAt:])))
		if size < batchHeaderBytes || size > len(data) {
			return
		}
		base := int64(binary.BigEndian.Uint64(data))
		visit(base, base+int64(int32(binary.BigEndian.Uint32(data[batchLastOffsetDeltaAt:]))))
		data = data[size:]
	}
}

// producedRecords returns the records a Produce request body carries per
// partition (one topic per kbench producer).
func producedRecords(version int16, body []byte) (map[int32]int64, error) {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(version)
	if err := req.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("wire tap: produce request: %w", err)
	}
	counts := map[int32]int64{}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			count, _ := batchRecords(p.Records, 0)
			counts[p.Partition] += count
		}
	}
	return counts, nil
}

// parseRequestHeader splits a request frame into its header fields and
// its body (request header v1, or v2 with tagged fields for flexible
// versions).
func parseRequestHeader(frame []byte) (key, version int16, correlationID int32, body []byte, err error) {
	if len(frame) < 10 {
		return 0, 0, 0, nil, errors.New("wire tap: request shorter than its header")
	}
	key, version = int16(binary.BigEndian.Uint16(frame)), int16(binary.BigEndian.Uint16(frame[2:]))
	correlationID = int32(binary.BigEndian.Uint32(frame[4:]))
	clientIDBytes := max(int(int16(binary.BigEndian.Uint16(frame[8:]))), 0)
	if 10+clientIDBytes > len(frame) {
		return 0, 0, 0, nil, errors.New("wire tap: request client id past its frame")
	}
	body = frame[10+clientIDBytes:]
	req := kmsg.RequestForKey(key)
	if req == nil {
		return key, version, correlationID, body, nil
	}
	req.SetVersion(version)
	if req.IsFlexible() {
		if body, err = skipTags(body); err != nil {
			return 0, 0, 0, nil, err
		}
	}
	return key, version, correlationID, body, nil
}

// skipResponseHeaderTags skips the tagged fields of a flexible response
// header (ApiVersions keeps header v0 at every version).
func skipResponseHeaderTags(resp kmsg.Response, body []byte) ([]byte, error) {
	if resp.IsFlexible() && resp.Key() != apiKeyAPIVersions {
		return skipTags(body)
	}
	return body, nil
}

// skipTags skips a tagged-field section: a count, then per field a tag, a
// size and that many bytes, each number an unsigned varint.
func skipTags(data []byte) ([]byte, error) {
	count, n := binary.Uvarint(data)
	if n <= 0 {
		return nil, errors.New("wire tap: bad tagged field count")
	}
	data = data[n:]
	for range count {
		_, n = binary.Uvarint(data)
		if n <= 0 {
			return nil, errors.New("wire tap: bad tag")
		}
		data = data[n:]
		size, n := binary.Uvarint(data)
		if n <= 0 || size > uint64(len(data)-n) {
			return nil, errors.New("wire tap: bad tagged field size")
		}
		data = data[n+int(size):]
	}
	return data, nil
}

// frameReader reassembles size-prefixed frames from a byte stream cut
// anywhere.
type frameReader struct {
	size     [4]byte
	sizeHave int
	frame    []byte
	want     int
}

// feed consumes data and calls complete with every frame it finishes
// (the frame's storage is reused after complete returns).
func (f *frameReader) feed(data []byte, complete func(frame []byte) error) error {
	for len(data) > 0 {
		if f.sizeHave < len(f.size) {
			n := copy(f.size[f.sizeHave:], data)
			f.sizeHave += n
			data = data[n:]
			if f.sizeHave < len(f.size) {
				return nil
			}
			f.want = int(int32(binary.BigEndian.Uint32(f.size[:])))
			if f.want < 0 || f.want > frameBytesMax {
				return fmt.Errorf("wire tap: frame of %d bytes", f.want)
			}
			f.frame = f.frame[:0]
		}
		n := min(f.want-len(f.frame), len(data))
		f.frame = append(f.frame, data[:n]...)
		data = data[n:]
		if len(f.frame) == f.want {
			f.sizeHave = 0
			if err := complete(f.frame); err != nil {
				return err
			}
		}
	}
	return nil
}
