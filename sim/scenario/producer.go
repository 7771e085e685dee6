package scenario

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafkasim/kafkasim/checker"
	"github.com/kafkasim/kafkasim/client"
	"github.com/kafkasim/kafkasim/sim"
)

// producerActor is one producer client on its own simulated host. Each
// session (the host's incarnation) has its own producer id in the history.
type producerActor struct {
	r        *run
	index    int
	clientID int
	spec     ProducerSpec
	host     *sim.Node
	cluster  *client.Cluster
	producer *client.Producer
	session  int
	seq      int64
	inflight int
	// acknowledged, if set, runs when a send of this producer is
	// acknowledged, with the time since it was made: a fault injector's
	// trigger (stallThenPowerLoss).
	acknowledged func(latency time.Duration)
}

func (p *producerActor) name() string { return fmt.Sprintf("producer-%d", p.index) }

// start begins a session: a new client and producer on the host's current
// incarnation.
func (p *producerActor) start() {
	describeRetention(p.r)
	p.session++
	env := p.host.Env()
	cluster, err := client.NewCluster(env, client.ClusterConfig{Bootstrap: p.r.bootstrap(), ClientID: p.name()})
	if err != nil {
		p.r.fail(fmt.Errorf("%s: %w", p.name(), err))
		return
	}
	cfg := client.DefaultProducerConfig()
	cfg.Acks = p.spec.Acks
	cfg.Idempotent = p.spec.Idempotent
	cfg.Compression = p.spec.Codec
	cfg.Linger = p.spec.Linger
	cfg.Partitioner = client.PartitionerManual
	cfg.DeliveryTimeout = 30 * time.Second
	cfg.RequestTimeout = p.r.cfg.Workload.produceRequestTimeout()
	cfg.MaxRequestBytes = requestBytesMax(p.r.cfg.Workload, cfg)
	if !p.spec.Idempotent {
		// The checker's contract: a non-idempotent send is one attempt, so
		// a value appears at most once unless it was retried as a new op.
		cfg.Retries = 0
	}
	producer, err := client.NewProducer(cluster, cfg)
	if err != nil {
		p.r.fail(fmt.Errorf("%s: %w", p.name(), err))
		return
	}
	p.cluster, p.producer, p.inflight = cluster, producer, 0
	p.tick()
}

// tick produces one record and schedules the next while the safety phase
// lasts.
func (p *producerActor) tick() {
	if p.r.phase != phaseSafety {
		return
	}
	p.produce()
	wait := time.Duration(p.r.rand.Int64Range(int64(p.spec.Interval/2), int64(p.spec.Interval*3/2)))
	session := p.session
	p.host.AfterFunc(wait, func() {
		if p.session == session {
			p.tick()
		}
	})
}

func (p *producerActor) produce() {
	partition := int32(p.r.rand.IntN(int(p.r.cfg.Partitions)))
	if p.sendsOversize() {
		p.produceOversize(partition)
		return
	}
	p.send(partition, p.key())
}

// send produces one record to partition, with key (nil for none) and a
// unique value, and records it.
func (p *producerActor) send(partition int32, key []byte) {
	value := fmt.Sprintf("p%d.%d-%d", p.index, p.session, p.seq)
	producerID := int64(p.index)<<20 | int64(p.session)
	// The record carries the host clock's time, stamped here rather than
	// by the client so that the history holds exactly what was sent.
	timestamp := p.host.Env().Clock.Now().UnixMilli()
	p.r.recorder.sentAt(timestamp)
	op := p.r.recorder.begin(checker.Op{
		Client: p.clientID, Process: p.session, Kind: checker.KindProduce,
		Call: int64(p.r.sched.Now()), Topic: topicName, Partition: partition,
		Produce: &checker.Produce{
			Value: value, ProducerID: producerID, Idempotent: p.spec.Idempotent,
			Acks: int8(p.spec.Acks), Seq: p.seq, Durable: p.r.durable(p.spec.Acks), Offset: -1,
			Timestamp: timestamp,
		},
	})
	p.seq++
	p.inflight++
	session := p.session
	p.producer.Produce(client.Record{Topic: topicName, Partition: partition, Timestamp: timestamp, Key: key, Value: []byte(value)}, func(res client.Result) {
		if p.session != session {
			return // the session crashed; the op stays open and closes as indefinite
		}
		p.inflight--
		done := p.r.recorder.end(op, p.r.sched.Now(), outcomeOf(res.Outcome))
		if res.Outcome == client.OutcomeOK {
			done.Produce.Offset = res.Offset
		}
		recordSending(done.Produce, res)
		if res.Outcome == client.OutcomeOK && p.acknowledged != nil {
			p.acknowledged(time.Duration(done.Return - done.Call))
		}
	})
}

// recordSending copies into the history how the client last sent a record:
// its idempotent identity and the size of its batch.
func recordSending(produce *checker.Produce, res client.Result) {
	if res.Sequence >= 0 && produce.Idempotent {
		produce.Sequence = &checker.SequenceNumber{ProducerID: res.ProducerID, Epoch: res.ProducerEpoch, Sequence: res.Sequence}
	}
	if res.BatchRecords > 0 {
		produce.BatchBytes, produce.BatchRecords = res.BatchBytes, res.BatchRecords
	}
	var kafkaErr *kerr.Error
	if res.Outcome != client.OutcomeOK && errors.As(res.BrokerError, &kafkaErr) {
		produce.Error = kafkaErr.Message
		if epoch := res.BrokerErrorLeaderEpoch; epoch >= 0 {
			produce.ErrorLeaderEpoch = &epoch
		}
	}
}

func outcomeOf(o client.Outcome) checker.Outcome {
	switch o {
	case client.OutcomeOK:
		return checker.OutcomeOK
	case client.OutcomeDefiniteFailure:
		return checker.OutcomeFail
	}
	return checker.OutcomeIndefinite
}

// crash kills the producer's host; its open operations stay indefinite.
func (p *producerActor) crash() {
	p.host.Crash()
	p.session++ // invalidates callbacks of the dead session
	p.r.sched.After(time.Duration(p.r.rand.Int64Range(int64(10*time.Millisecond), int64(time.Second))), p.name()+"-restart", p.restart)
}

// restart brings a crashed producer back; heal may have done so already.
func (p *producerActor) restart() {
	if p.host.Alive() {
		return
	}
	p.host.Restart()
	p.start()
}
