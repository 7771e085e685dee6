package quorum

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker/raft"
	"github.com/kafkasim/kafkasim/core"
)

// peer is the host's connection to one other voter's controller listener.
// It carries this node's requests out and their answers back; requests from
// the peer arrive on the node's own listener instead (HandleRequest), as
// between Kafka controllers. The connection is dialed on the first request
// and again after it breaks; Raft resends what got no answer.
type peer struct {
	host    *Host
	id      int32
	address string
	conn    core.Conn
	// waiting maps the correlation id of each request sent on conn to the
	// request, to decode its answer. Ids are Raft's, unique per node life.
	waiting map[int32]kmsg.Request
	// progressAt is when the connection last made progress, by the node's
	// clock: a request sent while none waited, or an answer received.
	progressAt time.Time
}

// send writes req as a Kafka request frame, dialing first if needed. A
// connection on which requests wait and nothing came back for longer than
// the request timeout is closed and dialed again first: a peer that went silent (a dial that
// hangs, frames dropped without a reset) must not hold the quorum's traffic
// on a dead connection, as Kafka's network client disconnects on
// request.timeout.ms.
func (p *peer) send(correlationID int32, req kmsg.Request) {
	now := p.host.env.Clock.Now()
	if p.conn != nil && len(p.waiting) > 0 && now.Sub(p.progressAt) > p.host.cfg.RequestTimeout {
		p.host.log.Debug("quorum peer silent; reconnecting", slog.Int("peer", int(p.id)))
		p.close()
	}
	if p.conn == nil {
		p.waiting = make(map[int32]kmsg.Request)
		p.conn = p.host.env.Net.Dial(p.address, p)
	}
	if len(p.waiting) == 0 {
		p.progressAt = now
	}
	p.waiting[correlationID] = req
	p.conn.Send(appendRequestFrame(nil, correlationID, p.host.clientID(), req))
}

// close drops the connection; answers still on their way are lost.
func (p *peer) close() {
	if p.conn != nil {
		conn := p.conn
		p.conn, p.waiting = nil, nil
		conn.Close()
	}
}

// OnOpen implements core.ConnHandler.
func (p *peer) OnOpen(core.Conn) {}

// OnFrame decodes an answer and steps Raft with it. A frame that does not
// parse, or answers nothing we asked, breaks the connection: the peer speaks
// something else.
func (p *peer) OnFrame(c core.Conn, frame []byte) {
	if c != p.conn {
		return
	}
	resp, correlationID, err := p.decodeResponse(frame)
	if err != nil {
		p.host.log.Warn("bad answer from a quorum peer", slog.Int("peer", int(p.id)), slog.Any("err", err))
		p.close()
		return
	}
	body, ok := resp.(raft.Body)
	if !ok {
		return
	}
	p.host.step(raft.Message{From: p.id, To: p.host.cfg.NodeID, CorrelationID: correlationID, Body: body})
}

// OnClose forgets the connection; the next request dials again.
func (p *peer) OnClose(c core.Conn, _ error) {
	if c == p.conn {
		p.conn, p.waiting = nil, nil
	}
}

// decodeResponse parses a response frame to a request in waiting.
func (p *peer) decodeResponse(frame []byte) (kmsg.Response, int32, error) {
	if len(frame) < 4 {
		return nil, 0, fmt.Errorf("%d byte frame has no correlation id", len(frame))
	}
	correlationID := int32(binary.BigEndian.Uint32(frame))
	req, ok := p.waiting[correlationID]
	if !ok {
		return nil, 0, fmt.Errorf("answer to correlation id %d, which no request carries", correlationID)
	}
	delete(p.waiting, correlationID)
	p.progressAt = p.host.env.Clock.Now()
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	reader := kbin.Reader{Src: frame[4:]}
	if resp.IsFlexible() {
		kmsg.SkipTags(&reader)
		if err := reader.Complete(); err != nil {
			return nil, 0, fmt.Errorf("response header tags: %w", err)
		}
	}
	if err := resp.ReadFrom(reader.Src); err != nil {
		return nil, 0, fmt.Errorf("%s v%d response: %w", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp, correlationID, nil
}

// appendRequestFrame appends a request frame without its size prefix (the
// network adds it): request header v1, or v2 with empty tagged fields for
// flexible versions, then the body.
func appendRequestFrame(dst []byte, correlationID int32, clientID string, req kmsg.Request) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(req.Key()))
	dst = binary.BigEndian.AppendUint16(dst, uint16(req.GetVersion()))
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(clientID)))
	dst = append(dst, clientID...)
	if req.IsFlexible() {
		dst = append(dst, 0)
	}
	return req.AppendTo(dst)
}

// clientID names this node in the request headers it sends.
func (h *Host) clientID() string {
	return "raft-node-" + strconv.Itoa(int(h.cfg.NodeID))
}
