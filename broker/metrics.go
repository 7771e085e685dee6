package broker

import "fmt"

// nodeMetrics are the node's counters and gauges. They are plain fields,
// updated on the loop, so the simulator reads them deterministically; the
// production edge exports them.
type nodeMetrics struct {
	// syncsStarted counts group-commit syncs submitted to the IO.
	syncsStarted int64
	// producePurgatory is the number of acks=all produce requests waiting
	// for durability now.
	producePurgatory int64
}

// Metrics is a snapshot of a node's counters.
type Metrics struct {
	SyncsStarted     int64
	ProducePurgatory int64
}

// Metrics returns a snapshot of the node's counters.
func (n *Node) Metrics() Metrics {
	return Metrics{SyncsStarted: n.metrics.syncsStarted, ProducePurgatory: n.metrics.producePurgatory}
}

// assert panics when an invariant does not hold: continuing would risk
// acknowledging data the broker cannot keep. The simulator turns the panic
// into a failing seed.
func assert(ok bool, message string) {
	if !ok {
		panic(fmt.Sprintf("broker: invariant violated: %s", message))
	}
}
