package scenario

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kafkasim/kafkasim/core"
)

// Fault schedules: the fault events a run fired, and runs that replay only
// some of them.
//
// Every fault that strikes at instants (a crash, a power loss, a burst of
// disk errors, a full disk, a client crash, a network fault, a pause, a
// network partition, a clock jump, damage at rest) has a timer that fires
// again and again during the safety phase (every, in faults.go). One firing
// is a fault event, named by its kind and its ordinal: crash#3 is the third
// firing of the crash timer. A recording run notes, for each firing, its
// time, what it did, and the run's random stream (run.rand) as the firing
// found it and as it left it.
//
// A replay runs the same seed and fault set again, but only the kept
// events take effect. The difficulty is that run.rand is shared: the
// fault timers draw their targets, parameters and next firing times from
// it, and so do the producers, consumers and the workload, whose number
// of draws changes as soon as one fault is left out. Left alone, skipping
// crash#1 would move every later firing and change what crash#5 hits, so a
// schedule could not be shrunk event by event. A replay therefore pins the
// stream to the recording at every firing: a kept event starts from the
// stream as the recorded firing found it (so it strikes the same target
// with the same parameters, as far as the state it meets allows), and
// every firing, kept or suppressed, leaves the stream as the recorded one
// left it (so the next firing comes at the recorded time, and the workload
// draws what it drew in the recording from there on). A suppressed event
// makes no draw and has no effect. Every firing of a replay thus happens
// at the same virtual time as in the recording, crash#3 is always the
// same event, and a replay that keeps every event is the recording, byte
// for byte (TestReplayOfEveryEventIsThePlainRun). What pinning cannot
// hold still is the system's reaction: without an earlier crash a broker
// may be up where it was down, and the workload's draws between two
// firings follow what the clients see.
//
// The faults that act all the time rather than at instants (frame delay
// and loss, bit flips on read, torn writes, clock drift, retention) are no
// events: the fault set (--faults) switches them, and ShrinkFaults shrinks
// them.

// FaultEventID names one firing of a fault's timer: its kind (one of
// FaultEventKinds) and its ordinal among the firings of that kind,
// counting from 1.
type FaultEventID struct {
	Kind string
	N    int
}

// String renders the id as ParseFaultEvents reads it: "crash#3".
func (id FaultEventID) String() string { return id.Kind + "#" + strconv.Itoa(id.N) }

// FaultEventKinds lists the kinds of fault events, sorted: the fault
// timers' labels without their "fault-" prefix.
var FaultEventKinds = []string{
	"client-crash", "clock-jump", "crash", "damage", "disk-error", "disk-full", "network", "partition", "pause",
}

// faultLabelPrefix starts the label of every fault timer's event.
const faultLabelPrefix = "fault-"

// ParseFaultEvents reads "none" or a comma-separated list of fault events
// such as "crash#3,partition#1".
func ParseFaultEvents(s string) ([]FaultEventID, error) {
	if s == "none" {
		return []FaultEventID{}, nil
	}
	var ids []FaultEventID
	for _, text := range strings.Split(s, ",") {
		text = strings.TrimSpace(text)
		kind, number, found := strings.Cut(text, "#")
		n, err := strconv.Atoi(number)
		if !found || err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a fault event: want KIND#N such as crash#3, or none", text)
		}
		if !slices.Contains(FaultEventKinds, kind) {
			return nil, fmt.Errorf("unknown fault event kind %q in %q (known: %s)", kind, text, strings.Join(FaultEventKinds, ", "))
		}
		ids = append(ids, FaultEventID{Kind: kind, N: n})
	}
	return ids, nil
}

// FormatFaultEvents renders ids as ParseFaultEvents reads them.
func FormatFaultEvents(ids []FaultEventID) string {
	if len(ids) == 0 {
		return "none"
	}
	texts := make([]string, len(ids))
	for i, id := range ids {
		texts[i] = id.String()
	}
	return strings.Join(texts, ",")
}

// FaultEvent is one firing of a fault's timer, as a run saw it.
type FaultEvent struct {
	FaultEventID
	// At is the virtual time of the firing.
	At time.Duration
	// Effect says what the firing did, such as "power loss of b2"; it is
	// empty when the firing found nothing to do (its broker already down,
	// a disk stalling, no batch to damage) or was suppressed.
	Effect string
	// Suppressed marks a firing that a replay left out.
	Suppressed bool
	// before and after are the run's random stream as the firing found it
	// and as it left it, to which a replay pins its own.
	before, after core.Rand
}

// Struck reports whether the event took effect.
func (e FaultEvent) Struck() bool { return e.Effect != "" && !e.Suppressed }

// String describes the event on one line: "crash#3 at 4.213s: power loss
// of b2".
func (e FaultEvent) String() string {
	what := e.Effect
	switch {
	case e.Suppressed:
		what = "suppressed"
	case what == "":
		what = "nothing to do"
	}
	return fmt.Sprintf("%s at %v: %s", e.FaultEventID, e.At.Round(time.Millisecond), what)
}

// FaultSchedule records the fault events of one run as they fire and, in a
// replay, decides which of them take effect. Give a run one with
// Config.WithFaultSchedule; one schedule serves one run.
type FaultSchedule struct {
	// Fired lists every firing of the run's fault timers in order, kept
	// and suppressed alike, filled in as the run goes.
	Fired []FaultEvent
	// recorded is the recording a replay pins to, by id, nil while
	// recording (lookups only).
	recorded map[FaultEventID]FaultEvent
	// keep is the set of recorded events a replay lets take effect, and
	// kept the same in firing order.
	keep map[FaultEventID]bool
	kept []FaultEventID
	// counts numbers the firings of each kind (lookups only).
	counts map[string]int
	// current is the index in Fired of the firing running now, or -1.
	current int
}

// NewFaultRecording returns a schedule that records every firing and
// changes nothing in the run.
func NewFaultRecording() *FaultSchedule {
	return &FaultSchedule{counts: make(map[string]int), current: -1}
}

// Replay returns a schedule for a run of the same seed and faults as the
// recording s in which only the events keep name take effect. Every named
// event must have fired in the recording; an event that fired without
// effect may be kept, and may then find something to do. Replaying a
// replay pins to the same original recording.
func (s *FaultSchedule) Replay(keep []FaultEventID) (*FaultSchedule, error) {
	recorded := s.recording()
	replay := &FaultSchedule{recorded: recorded, keep: make(map[FaultEventID]bool), counts: make(map[string]int), current: -1}
	for _, id := range keep {
		if _, ok := recorded[id]; !ok {
			return nil, fmt.Errorf("%s did not fire in the run of this seed and fault set (%s)", id, s.firedCount(id.Kind))
		}
		replay.keep[id] = true
	}
	replay.kept = s.inFiringOrder(replay.keep)
	return replay, nil
}

// firedCount says how often the recording's timer of kind fired.
func (s *FaultSchedule) firedCount(kind string) string {
	n := 0
	for id := range s.recording() { // order-independent: a count
		if id.Kind == kind {
			n++
		}
	}
	if n == 0 {
		return fmt.Sprintf("no %s event fired", kind)
	}
	return fmt.Sprintf("%s fired %d times: %s#1 to %s#%d", kind, n, kind, kind, n)
}

// recording returns the recorded events by id: the original recording of
// a replay, or what s itself recorded.
func (s *FaultSchedule) recording() map[FaultEventID]FaultEvent {
	if s.recorded != nil {
		return s.recorded
	}
	recorded := make(map[FaultEventID]FaultEvent, len(s.Fired))
	for _, e := range s.Fired {
		recorded[e.FaultEventID] = e
	}
	return recorded
}

// inFiringOrder lists the ids of set in the order the recording fired
// them.
func (s *FaultSchedule) inFiringOrder(set map[FaultEventID]bool) []FaultEventID {
	ids := make([]FaultEventID, 0, len(set))
	for id := range set { // order-independent: sorted below
		ids = append(ids, id)
	}
	recorded := s.recording()
	slices.SortFunc(ids, func(a, b FaultEventID) int {
		if c := cmp.Compare(recorded[a].At, recorded[b].At); c != 0 {
			return c
		}
		return strings.Compare(a.String(), b.String())
	})
	return ids
}

// Replaying reports whether s is a replay rather than a recording.
func (s *FaultSchedule) Replaying() bool { return s != nil && s.recorded != nil }

// Kept lists the events a replay lets take effect, in firing order.
func (s *FaultSchedule) Kept() []FaultEventID { return slices.Clone(s.kept) }

// Struck lists the events that took effect in the run, in firing order.
func (s *FaultSchedule) Struck() []FaultEvent {
	var struck []FaultEvent
	for _, e := range s.Fired {
		if e.Struck() {
			struck = append(struck, e)
		}
	}
	return struck
}

// WithFaultSchedule returns the configuration with s recording (or
// replaying) its run's fault events. It is the only way a run's events
// are recorded or left out; a run without one is the run of the seed.
func (c Config) WithFaultSchedule(s *FaultSchedule) Config {
	c.Harsh.schedule = s
	return c
}

// FaultSchedule returns the schedule given with WithFaultSchedule, or nil.
func (c Config) FaultSchedule() *FaultSchedule { return c.Harsh.schedule }

// fireFault runs f, one firing of the fault timer labelled label, as the
// run's fault schedule decides: as it is without a schedule; noted while
// recording; pinned to the recording, or suppressed, in a replay (the
// comment at the top of this file says why).
func (r *run) fireFault(label string, f func()) {
	s := r.cfg.Harsh.schedule
	kind, isFault := strings.CutPrefix(label, faultLabelPrefix)
	if s == nil || !isFault {
		f()
		return
	}
	s.counts[kind]++
	event := FaultEvent{FaultEventID: FaultEventID{Kind: kind, N: s.counts[kind]}, At: r.sched.Now()}
	pinned, recorded := s.recorded[event.FaultEventID]
	if s.Replaying() && !s.keep[event.FaultEventID] {
		event.Suppressed = true
		if recorded {
			*r.rand = pinned.after
		}
		event.before, event.after = *r.rand, *r.rand
		s.Fired = append(s.Fired, event)
		r.sched.Trace("fault event %s suppressed", event.FaultEventID)
		return
	}
	if recorded {
		*r.rand = pinned.before
	}
	event.before = *r.rand
	s.Fired = append(s.Fired, event)
	s.current = len(s.Fired) - 1
	f()
	s.current = -1
	if recorded {
		*r.rand = pinned.after
	}
	s.Fired[len(s.Fired)-1].after = *r.rand
}

// noteFault adds what the fault event firing now did to its description,
// when the run records its schedule; otherwise it does nothing at all, so
// that a run without a schedule stays the run of its seed.
func (r *run) noteFault(format string, args ...any) {
	s := r.cfg.Harsh.schedule
	if s == nil || s.current < 0 {
		return
	}
	e := &s.Fired[s.current]
	if e.Effect != "" {
		e.Effect += ", then "
	}
	e.Effect += fmt.Sprintf(format, args...)
}
