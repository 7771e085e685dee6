package quorum

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Voter is one entry of controller.quorum.voters: a node id and the address
// of its controller listener.
type Voter struct {
	ID      int32
	Address string
}

// ParseVoters parses controller.quorum.voters, Kafka's
// "id@host:port,id@host:port" list. Ids must be distinct and non-negative.
// The result is sorted by id.
func ParseVoters(value string) ([]Voter, error) {
	if strings.TrimSpace(value) == "" {
		return nil, errors.New("controller.quorum.voters is empty; want a list of id@host:port")
	}
	var voters []Voter
	for _, item := range strings.Split(value, ",") {
		item = strings.TrimSpace(item)
		idText, address, ok := strings.Cut(item, "@")
		if !ok || address == "" || !strings.Contains(address, ":") {
			return nil, fmt.Errorf("controller.quorum.voters entry %q is not id@host:port", item)
		}
		id, err := strconv.ParseInt(idText, 10, 32)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("controller.quorum.voters entry %q has no valid node id", item)
		}
		if slices.ContainsFunc(voters, func(v Voter) bool { return v.ID == int32(id) }) {
			return nil, fmt.Errorf("controller.quorum.voters names node %d twice", id)
		}
		voters = append(voters, Voter{ID: int32(id), Address: address})
	}
	slices.SortFunc(voters, func(a, b Voter) int { return int(a.ID) - int(b.ID) })
	return voters, nil
}

// Config is one node's part in the metadata quorum.
type Config struct {
	// NodeID is node.id.
	NodeID int32
	// Voters is controller.quorum.voters.
	Voters []Voter
	// ClusterID is the cluster's id; the quorum state records it and every
	// quorum request carries it.
	ClusterID string
	// Dir is the metadata log directory (KRaft's __cluster_metadata-0).
	Dir string
	// TickInterval is the period of Raft's logical clock; the timeouts
	// below are rounded up to whole ticks.
	TickInterval time.Duration
	// ElectionTimeout is quorum.election.timeout.ms.
	ElectionTimeout time.Duration
	// FetchTimeout is quorum.fetch.timeout.ms.
	FetchTimeout time.Duration
	// RequestTimeout is quorum.request.timeout.ms.
	RequestTimeout time.Duration
	// SnapshotIntervalEntries and SnapshotIntervalBytes decide when the
	// host snapshots the state machine and drops the log below it: once
	// this many entries, or entries with this many bytes of data, were
	// applied since the last snapshot (or since the restart), whichever
	// comes first. Zero switches a threshold off; both zero, no snapshot is
	// taken and the log grows without bound. Kafka's settings are in bytes
	// and time (metadata.log.max.record.bytes.between.snapshots, 20 MiB,
	// and metadata.log.max.snapshot.interval.ms, one hour); a count of
	// entries stands in for the time, since a quiet log needs no snapshot.
	SnapshotIntervalEntries int
	SnapshotIntervalBytes   int64
}

// DefaultConfig returns Kafka's defaults for the timeouts, with a 50 ms
// tick, and a snapshot every 1000 entries or 1 MiB of entry data.
func DefaultConfig() Config {
	return Config{
		TickInterval:            50 * time.Millisecond,
		ElectionTimeout:         time.Second,
		FetchTimeout:            2 * time.Second,
		RequestTimeout:          2 * time.Second,
		SnapshotIntervalEntries: 1000,
		SnapshotIntervalBytes:   1 << 20,
	}
}

// ticks converts a timeout to whole ticks, at least one.
func (c *Config) ticks(d time.Duration) int {
	return max(1, int((d+c.TickInterval-1)/c.TickInterval))
}

// validate rejects a configuration the host cannot run with, in one line.
func (c *Config) validate() error {
	switch {
	case c.TickInterval <= 0 || c.ElectionTimeout <= 0 || c.FetchTimeout <= 0 || c.RequestTimeout <= 0:
		return errors.New("quorum: the tick interval and the quorum timeouts must be positive")
	case c.SnapshotIntervalEntries < 0 || c.SnapshotIntervalBytes < 0:
		return errors.New("quorum: the snapshot intervals must not be negative")
	case len(c.Voters) == 0:
		return errors.New("quorum: controller.quorum.voters is empty")
	case c.Dir == "":
		return errors.New("quorum: no metadata log directory")
	}
	return nil
}
