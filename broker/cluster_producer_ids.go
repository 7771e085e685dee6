package broker

import (
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkasim/kafkasim/broker/controller"
)

// producerIDBlocks hands out producer ids in cluster mode from blocks the
// active controller allocates and commits (AllocateProducerIds, KIP-730),
// so that no two brokers, and no two lives of one, give a producer the same
// id: a broker's own counter, as a standalone broker keeps, let two brokers
// hand out one id, and a producer's new batches were then taken for another
// producer's duplicates (found by cluster seeds 16, 39 and 43). It asks for
// the next block when a tenth of the current one is left, and keeps at
// most one spare.
type producerIDBlocks struct {
	cluster *cluster
	// next and end bound the block in use; spareStart and spareEnd the
	// block fetched ahead (empty when spareEnd == 0).
	next, end            int64
	spareStart, spareEnd int64
	requesting           bool
}

// allocate returns an id never handed out in the cluster, or false when
// no block is at hand yet (one has been asked for; the client retries).
func (p *producerIDBlocks) allocate() (int64, bool) {
	if p.next >= p.end && p.spareEnd > 0 {
		p.next, p.end, p.spareStart, p.spareEnd = p.spareStart, p.spareEnd, 0, 0
	}
	if p.next >= p.end {
		p.request()
		return 0, false
	}
	id := p.next
	p.next++
	if p.end-p.next < controller.ProducerIDBlockSize/10 {
		p.request()
	}
	return id, true
}

// request asks the controller for a block unless one is on its way or
// spare, or the broker has no registration to name.
func (p *producerIDBlocks) request() {
	c := p.cluster
	if p.requesting || p.spareEnd > 0 || c.lifecycle.brokerEpoch < 0 {
		return
	}
	p.requesting = true
	req := kmsg.NewPtrAllocateProducerIDsRequest()
	req.BrokerID, req.BrokerEpoch = c.node.cfg.NodeID, c.lifecycle.brokerEpoch
	c.sendToController(req, 10*time.Second, func(resp kmsg.Response, err error) {
		p.requesting = false
		if err != nil {
			return
		}
		r := resp.(*kmsg.AllocateProducerIDsResponse)
		if r.ErrorCode != 0 || r.ProducerIDLen <= 0 || r.ProducerIDStart < 0 {
			c.node.log.Warn("the controller gave no producer ids", slog.String("err", kerr.ErrorForCode(r.ErrorCode).Error()))
			return
		}
		if p.next >= p.end {
			p.next, p.end = r.ProducerIDStart, r.ProducerIDStart+int64(r.ProducerIDLen)
			return
		}
		p.spareStart, p.spareEnd = r.ProducerIDStart, r.ProducerIDStart+int64(r.ProducerIDLen)
	})
}
