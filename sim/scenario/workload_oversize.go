package scenario

import "github.com/kafkasim/kafkasim/client"

// oversizeKeyBytes is the key size of an oversize record: above the
// broker's default message.max.bytes (1,048,588), and incompressible, so
// that no codec brings the batch back under it.
const oversizeKeyBytes = 1<<20 + 64<<10

// oversizeRequestBytesMax is the producer's max.request.size when the
// workload sends oversize records: large enough that the producer lets
// them through and the broker is the one to refuse them.
const oversizeRequestBytesMax = 2 << 20

// incompressibleKey returns size incompressible bytes derived from seed (a
// xorshift sequence): the key of an oversize record, or the padding of a
// normal one (WorkloadSpec.KeyBytes). Only sizes matter, so the history
// records just the record's value.
func incompressibleKey(seed uint64, size int) []byte {
	key := make([]byte, size)
	x := seed | 1
	for i := 0; i < len(key); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		for j := 0; j < 8 && i+j < len(key); j++ {
			key[i+j] = byte(x >> (8 * j))
		}
	}
	return key
}

// sendsOversize decides whether the producer's next send is an oversize
// record followed by a normal one: only idempotent producers (whose
// sequence the refusal must not break) after their first send, one time in
// Workload.OversizeOneIn.
func (p *producerActor) sendsOversize() bool {
	n := p.r.cfg.Workload.OversizeOneIn
	return n > 0 && p.spec.Idempotent && p.seq > 0 && p.r.rand.IntN(n) == 0
}

// produceOversize sends an oversize record and, right behind it, a normal
// record of the same partition, then flushes, so that both batches are in
// flight together: the second reaches the broker while the first's refusal
// is still on its way back.
func (p *producerActor) produceOversize(partition int32) {
	p.send(partition, incompressibleKey(p.keySeed(), oversizeKeyBytes))
	p.send(partition, p.key())
	p.producer.Flush(func() {})
}

// requestBytesMax is the producer's max.request.size for this workload.
func requestBytesMax(w WorkloadSpec, cfg client.ProducerConfig) int {
	if w.OversizeOneIn > 0 {
		return max(cfg.MaxRequestBytes, oversizeRequestBytesMax)
	}
	return cfg.MaxRequestBytes
}

// keySeed seeds the key of the producer's next record.
func (p *producerActor) keySeed() uint64 {
	return uint64(p.index)<<40 ^ uint64(p.session)<<32 ^ uint64(p.seq)
}

// key returns the key of a normal record: padding of Workload.KeyBytes, or
// nil.
func (p *producerActor) key() []byte {
	if n := p.r.cfg.Workload.KeyBytes; n > 0 {
		return incompressibleKey(p.keySeed(), n)
	}
	return nil
}
