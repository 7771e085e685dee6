package checker

import (
	"fmt"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
)

// logModel is the sequential specification of one partition's log, for
// porcupine. It is built from the partition's observations (acknowledged
// offsets and polled records) and exploits them to keep the state tiny.
//
// An offset is observed if some acknowledgement or poll reports a value at
// it. The model never lets an observed offset be filled by a value not
// observed there, and treats unobserved offsets as opaque: Kafka uses
// offsets for control records, compaction removes records, and an
// indefinite produce nobody read may have landed there. Every offset below
// the log's length is therefore filled, and an observed offset with a single
// observed value holds that value. So the state is just the log's length,
// plus, at offsets observed with several values (an inconsistent-offset
// anomaly), which of them the log holds. See docs/checker.md for why this
// is equivalent to the plain list-of-values model for what a history can
// observe.
type logModel struct {
	// offsets are the observed offsets, ascending, and values[i] the
	// distinct values observed at offsets[i], ascending.
	offsets []int64
	values  [][]string
	// seen maps a value to the observed offsets holding it, ascending. It is
	// only looked up, never ranged over.
	seen map[string][]int64
	// stepsMax bounds the number of Step calls (0: unbounded). When the
	// budget runs out every further step is refused and exhausted is set,
	// so the search ends quickly and the verdict is Unknown, whatever the
	// timing of the machine.
	stepsMax  int64
	steps     int64
	exhausted bool
}

// logState is the model's state. It is immutable: steps build new states.
type logState struct {
	// next is the log's length: every offset below it is filled.
	next int64
	// fills records the value chosen at each conflicting offset below next,
	// highest offset first.
	fills *fill
}

// fill is one conflicting offset's chosen value, in a persistent list whose
// nodes carry a hash of the list from them down, so that states hash in
// O(1).
type fill struct {
	offset int64
	value  string
	prev   *fill
	hash   uint64
}

// produceInput is a produce that porcupine may linearize: acknowledged at
// offset, or indefinite (acked false).
type produceInput struct {
	op     int
	value  string
	acked  bool
	offset int64
}

// pollInput is a poll that returned records. highest is its highest record
// offset; conflicting is set when some record sits at a conflicting offset,
// where the value must be checked against the state's fills.
type pollInput struct {
	op          int
	records     []Record
	highest     int64
	conflicting bool
}

// newLogModel builds the model of partition p.
func newLogModel(p *partitionIndex, stepsMax int64) *logModel {
	m := &logModel{seen: make(map[string][]int64), stepsMax: stepsMax}
	for _, o := range p.observations {
		n := len(m.offsets)
		if n == 0 || m.offsets[n-1] != o.offset {
			m.offsets = append(m.offsets, o.offset)
			m.values = append(m.values, nil)
			n++
		}
		if vs := m.values[n-1]; len(vs) == 0 || vs[len(vs)-1] != o.value {
			m.values[n-1] = append(vs, o.value)
			m.seen[o.value] = append(m.seen[o.value], o.offset)
		}
	}
	return m
}

// nextObserved returns the index of the first observed offset at or after
// offset, or len(m.offsets).
func (m *logModel) nextObserved(offset int64) int {
	i, _ := slices.BinarySearch(m.offsets, offset)
	return i
}

// conflicting reports whether observed offset index i has several values.
func (m *logModel) conflicting(i int) bool {
	return len(m.values[i]) > 1
}

// step is porcupine's Step: whether input can take effect in state, and the
// state after it.
func (m *logModel) step(state, input any) (bool, any) {
	if m.stepsMax > 0 {
		m.steps++
		if m.steps > m.stepsMax {
			m.exhausted = true
			return false, state
		}
	}
	s := state.(*logState)
	switch in := input.(type) {
	case produceInput:
		next, ok := m.produce(s, in)
		return ok, next
	case pollInput:
		return m.poll(s, in), s
	default:
		panic(fmt.Sprintf("checker: unknown model input %T", input))
	}
}

// produce applies a produce. An acknowledged produce must fill the next
// observed offset, which must be its own. An indefinite produce whose value
// was observed fills the next observed offset if its value was observed
// there, is a no-op once the log is past every offset its value was
// observed at, and must wait otherwise: doing nothing earlier is never
// needed, because a no-op can always be linearized last instead. An
// indefinite produce nobody observed is always a no-op: if it took effect it
// is one of the opaque offsets.
func (m *logModel) produce(s *logState, in produceInput) (*logState, bool) {
	i := m.nextObserved(s.next)
	if in.acked {
		if i == len(m.offsets) || m.offsets[i] != in.offset {
			return nil, false
		}
		return m.fillAt(s, i, in.value), true
	}
	at := m.seen[in.value]
	if len(at) == 0 {
		return s, true
	}
	if i < len(m.offsets) {
		if _, found := slices.BinarySearch(m.values[i], in.value); found {
			return m.fillAt(s, i, in.value), true
		}
	}
	return s, s.next > at[len(at)-1]
}

// fillAt returns s extended to fill observed offset index i with value.
func (m *logModel) fillAt(s *logState, i int, value string) *logState {
	if m.offsets[i] < s.next {
		panic(fmt.Sprintf("checker: filling offset %d behind the log's length %d", m.offsets[i], s.next))
	}
	next := &logState{next: m.offsets[i] + 1, fills: s.fills}
	if m.conflicting(i) {
		next.fills = &fill{offset: m.offsets[i], value: value, prev: s.fills,
			hash: mixHash(fillsHash(s.fills), uint64(m.offsets[i])) ^ stringHash(value)}
	}
	return next
}

// poll reports whether a poll's records can be read from s: every offset
// read is filled, and conflicting offsets hold the value read.
func (m *logModel) poll(s *logState, in pollInput) bool {
	if in.highest >= s.next {
		return false
	}
	if !in.conflicting {
		return true
	}
	for _, r := range in.records {
		if value, chosen := s.valueAt(r.Offset); chosen && value != r.Value {
			return false
		}
	}
	return true
}

// valueAt returns the value chosen at a conflicting offset, if any.
func (s *logState) valueAt(offset int64) (string, bool) {
	for f := s.fills; f != nil && f.offset >= offset; f = f.prev {
		if f.offset == offset {
			return f.value, true
		}
	}
	return "", false
}

func fillsHash(f *fill) uint64 {
	if f == nil {
		return 0
	}
	return f.hash
}

// equalStates compares states exactly. Two states of equal length hold fills
// at the same offsets, so the lists are walked in lockstep until they share
// a node.
func equalStates(a, b any) bool {
	sa, sb := a.(*logState), b.(*logState)
	if sa.next != sb.next || fillsHash(sa.fills) != fillsHash(sb.fills) {
		return false
	}
	fa, fb := sa.fills, sb.fills
	for fa != fb {
		if fa == nil || fb == nil || fa.offset != fb.offset || fa.value != fb.value {
			return false
		}
		fa, fb = fa.prev, fb.prev
	}
	return true
}

func hashState(state any) uint64 {
	s := state.(*logState)
	return mixHash(fillsHash(s.fills), uint64(s.next))
}

// mixHash combines h with x (the splitmix64 finalizer over their sum).
func mixHash(h, x uint64) uint64 {
	z := h ^ (x + 0x9e3779b97f4a7c15 + (h << 6) + (h >> 2))
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// stringHash is 64-bit FNV-1a.
func stringHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// porcupineModel wraps m for porcupine. Partitioning happens before
// porcupine is called, one partition at a time, so Partition stays nil.
func (m *logModel) porcupineModel() porcupine.Model {
	return porcupine.Model{
		Init:              func() any { return &logState{} },
		Step:              func(state, input, _ any) (bool, any) { return m.step(state, input) },
		Equal:             equalStates,
		Hash:              hashState,
		DescribeOperation: func(input, _ any) string { return describeInput(input) },
		DescribeState:     func(state any) string { return describeState(state.(*logState)) },
		DescribeOperationMetadata: func(info any) string {
			if info == nil {
				return ""
			}
			return fmt.Sprintf("op #%d", info.(int))
		},
	}
}

// describeRecordsMax bounds the records a visualization label lists.
const describeRecordsMax = 8

func describeInput(input any) string {
	switch in := input.(type) {
	case produceInput:
		if in.acked {
			return fmt.Sprintf("produce %q @%d", in.value, in.offset)
		}
		return fmt.Sprintf("produce %q (indefinite)", in.value)
	case pollInput:
		shown := in.records[:min(len(in.records), describeRecordsMax)]
		more := ""
		if len(shown) < len(in.records) {
			more = fmt.Sprintf(" +%d more", len(in.records)-len(shown))
		}
		return fmt.Sprintf("poll [%s%s]", recordsText(shown), more)
	default:
		panic(fmt.Sprintf("checker: unknown model input %T", input))
	}
}

func describeState(s *logState) string {
	var parts []string
	for f := s.fills; f != nil; f = f.prev {
		parts = append(parts, fmt.Sprintf("%d:%q", f.offset, f.value))
	}
	slices.Reverse(parts)
	if len(parts) == 0 {
		return fmt.Sprintf("log length %d", s.next)
	}
	return fmt.Sprintf("log length %d, conflicting offsets hold %s", s.next, strings.Join(parts, " "))
}
