package checker

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
)

// Options tune Check. The zero value is the default.
type Options struct {
	// Method decides linearizability; the empty string means MethodOffsets,
	// which always decides. MethodPorcupine is the slower, bounded
	// cross-check.
	Method Method
	// LinearizabilityStepsMax bounds porcupine's search in each partition
	// (MethodPorcupine, and Visualize), in model steps; 0 means 20,000,000.
	// A partition whose search runs out is reported as LinearizableUnknown,
	// and the whole result as StatusUnknown unless an anomaly makes it
	// StatusFail. Being a count of steps rather than a timeout, the bound
	// gives the same verdict on every machine.
	LinearizabilityStepsMax int64
}

// ErrInvalidOptions is wrapped by the error that Options.validate returns.
var ErrInvalidOptions = errors.New("invalid options")

// validate reports options that name no method or a negative budget.
func (o Options) validate() error {
	switch o.Method {
	case "", MethodOffsets, MethodPorcupine:
	default:
		return fmt.Errorf("%w: unknown linearizability method %q, want %q or %q", ErrInvalidOptions, o.Method, MethodOffsets, MethodPorcupine)
	}
	if o.LinearizabilityStepsMax < 0 {
		return fmt.Errorf("%w: negative step budget %d", ErrInvalidOptions, o.LinearizabilityStepsMax)
	}
	return nil
}

func (o Options) method() Method {
	if o.Method == "" {
		return MethodOffsets
	}
	return o.Method
}

func (o Options) stepsMax() int64 {
	if o.LinearizabilityStepsMax > 0 {
		return o.LinearizabilityStepsMax
	}
	return linearizabilityStepsMaxDefault
}

// Status is the overall outcome of Check.
type Status string

// The statuses.
const (
	// StatusOK: every property held and every partition is linearizable.
	StatusOK Status = "ok"
	// StatusFail: at least one anomaly.
	StatusFail Status = "fail"
	// StatusUnknown: no anomaly, but some partition's linearizability was
	// not decided within the step budget. This is not a pass.
	StatusUnknown Status = "unknown"
	// StatusInvalid: the history or the options are malformed (Result.Err
	// says how).
	StatusInvalid Status = "invalid"
)

// CheckStat is what one check examined and found.
type CheckStat struct {
	Name string `json:"name"`
	// Checked counts the items the check examined (writes, offsets,
	// values, polls, partitions...), to show that it looked at something.
	Checked   int `json:"checked"`
	Anomalies int `json:"anomalies"`
	// Note says what the check could not see, when it matters (a replica
	// whose node was down at the end); empty otherwise.
	Note string `json:"note,omitempty"`
}

// Result is Check's verdict on a history.
type Result struct {
	Status Status `json:"status"`
	// Verdict is a one-line summary, such as
	// "OK: 4 partitions, 1234 ops, linearizable, 0 anomalies" or
	// "FAIL: lost-write x2, nonmonotonic-poll x1".
	Verdict string `json:"verdict"`
	// Err is set, and nothing else is, when the history or the options are
	// invalid.
	Err error `json:"-"`
	// Anomalies are sorted by kind (in AnomalyKind order), partition,
	// offset and witnesses.
	Anomalies  []Anomaly         `json:"anomalies"`
	Partitions []PartitionResult `json:"partitions"`
	// Checks lists every check in the order Check runs them.
	Checks []CheckStat `json:"checks"`
}

// deliveryCheck is one check besides linearizability.
type deliveryCheck struct {
	name string
	run  func(*historyIndex) ([]Anomaly, int)
}

// deliveryChecks are run in this order. Transactions will add their checks
// here: aborted reads (G1a: a read_committed poll returned a record of an
// aborted transaction) and uncommitted reads (a read_committed poll returned
// a record beyond the last stable offset), once Produce records its
// transaction and its fate. Poll.Isolation already records what the
// consumer asked for.
var deliveryChecks = []deliveryCheck{
	{name: "lost-write", run: checkLostWrites},
	{name: "inconsistent-offset", run: checkInconsistentOffsets},
	{name: "duplicate", run: checkDuplicates},
	{name: "unexpected-read", run: checkUnexpectedReads},
	{name: "producer-order", run: checkProducerOrder},
	{name: "sequence-gap", run: checkSequenceGaps},
	{name: "refused-retry", run: checkRefusedRetries},
	{name: "poll-order", run: checkPollOrder},
	{name: "commit-order", run: checkCommits},
	{name: "committed-read", run: checkCommittedReads},
	{name: "delivery", run: checkDelivery},
	{name: "log-start", run: checkLogStart},
	{name: "drain", run: checkDrains},
	{name: "time-lookup", run: checkTimeLookups},
	{name: "storage-error", run: checkStorageErrors},
}

// Check validates h and runs every check on it. Its result, including the
// order of every list and the verdict string, depends only on h and opts.
func Check(h *History, opts Options) Result {
	if err := cmp.Or(opts.validate(), h.Validate()); err != nil {
		return Result{Status: StatusInvalid, Verdict: "INVALID: " + err.Error(), Err: err}
	}
	ix := buildIndex(h)
	var result Result
	linearizability, partitions := checkLinearizable(ix, opts)
	result.Partitions = partitions
	result.Anomalies = append(result.Anomalies, linearizability...)
	result.Checks = append(result.Checks, CheckStat{Name: "linearizable", Checked: len(partitions), Anomalies: len(linearizability)})
	for _, c := range deliveryChecks {
		anomalies, checked := c.run(ix)
		result.Anomalies = append(result.Anomalies, anomalies...)
		result.Checks = append(result.Checks, CheckStat{Name: c.name, Checked: checked, Anomalies: len(anomalies)})
	}
	replication, stats := checkReplication(ix, h)
	result.Anomalies = append(result.Anomalies, replication...)
	result.Checks = append(result.Checks, stats...)
	sortAnomalies(result.Anomalies)
	result.Status, result.Verdict = verdict(h, &result, opts)
	return result
}

// verdict summarizes a result on one line.
func verdict(h *History, r *Result, opts Options) (Status, string) {
	var unknown []string
	for _, p := range r.Partitions {
		if p.Verdict == LinearizableUnknown {
			unknown = append(unknown, p.Partition.String())
		}
	}
	if len(r.Anomalies) > 0 {
		line := "FAIL: " + countKinds(r.Anomalies)
		if len(unknown) > 0 {
			line += "; linearizability undecided for " + strings.Join(unknown, ", ")
		}
		return StatusFail, line
	}
	size := fmt.Sprintf("%d partitions, %d ops", len(r.Partitions), len(h.Ops))
	if len(unknown) > 0 {
		return StatusUnknown, fmt.Sprintf("UNKNOWN: %s, linearizability undecided for %s (step budget %d exhausted), 0 anomalies",
			size, strings.Join(unknown, ", "), opts.stepsMax())
	}
	return StatusOK, fmt.Sprintf("OK: %s, linearizable, 0 anomalies", size)
}

// countKinds renders "lost-write x2, nonmonotonic-poll x1" for anomalies
// sorted by kind.
func countKinds(anomalies []Anomaly) string {
	var parts []string
	for start := 0; start < len(anomalies); {
		end := start + 1
		for end < len(anomalies) && anomalies[end].Kind == anomalies[start].Kind {
			end++
		}
		parts = append(parts, fmt.Sprintf("%s x%d", anomalies[start].Kind, end-start))
		start = end
	}
	return strings.Join(parts, ", ")
}

// Report renders r for a failure report: the verdict, then one line per
// anomaly, then one line per partition.
func (r *Result) Report() string {
	var b strings.Builder
	b.WriteString(r.Verdict)
	b.WriteByte('\n')
	for _, a := range r.Anomalies {
		fmt.Fprintf(&b, "  %s\n", a)
	}
	for _, c := range r.Checks {
		if c.Note != "" {
			fmt.Fprintf(&b, "  %s: %s\n", c.Name, c.Note)
		}
	}
	for _, p := range r.Partitions {
		fmt.Fprintf(&b, "  partition %s: %d ops, %d linearized, %s by %s", p.Partition, p.Ops, p.Linearized, p.Verdict, p.Method)
		if p.Method == MethodPorcupine {
			fmt.Fprintf(&b, " in %d steps", p.Steps)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// runOne validates h and runs one delivery check.
func runOne(h *History, run func(*historyIndex) ([]Anomaly, int)) ([]Anomaly, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	anomalies, _ := run(buildIndex(h))
	return sortAnomalies(anomalies), nil
}

// Linearizable checks that each partition's operations are linearizable
// with respect to one append-only log, and returns the anomalies (at most
// one per partition) and the verdict of each partition.
func Linearizable(h *History, opts Options) ([]Anomaly, []PartitionResult, error) {
	if err := cmp.Or(opts.validate(), h.Validate()); err != nil {
		return nil, nil, err
	}
	anomalies, partitions := checkLinearizable(buildIndex(h), opts)
	return sortAnomalies(anomalies), partitions, nil
}

// LostWrites returns the lost-write anomalies of h.
func LostWrites(h *History) ([]Anomaly, error) { return runOne(h, checkLostWrites) }

// InconsistentOffsets returns the inconsistent-offset anomalies of h.
func InconsistentOffsets(h *History) ([]Anomaly, error) { return runOne(h, checkInconsistentOffsets) }

// Duplicates returns the duplicate anomalies of h.
func Duplicates(h *History) ([]Anomaly, error) { return runOne(h, checkDuplicates) }

// UnexpectedReads returns the phantom-read and failed-write-read anomalies
// of h.
func UnexpectedReads(h *History) ([]Anomaly, error) { return runOne(h, checkUnexpectedReads) }

// ProducerOrder returns the nonmonotonic-send anomalies of h.
func ProducerOrder(h *History) ([]Anomaly, error) { return runOne(h, checkProducerOrder) }

// SequenceGaps returns the sequence-gap anomalies of h.
func SequenceGaps(h *History) ([]Anomaly, error) { return runOne(h, checkSequenceGaps) }

// PollOrder returns the nonmonotonic-poll and poll-skip anomalies of h.
func PollOrder(h *History) ([]Anomaly, error) { return runOne(h, checkPollOrder) }

// CommitOrder returns the backward-commit anomalies of h.
func CommitOrder(h *History) ([]Anomaly, error) { return runOne(h, checkCommits) }

// CommittedReads returns the lost-commit anomalies of h.
func CommittedReads(h *History) ([]Anomaly, error) { return runOne(h, checkCommittedReads) }

// LogStarts returns the premature-deletion anomalies of h.
func LogStarts(h *History) ([]Anomaly, error) { return runOne(h, checkLogStart) }

// Drains returns the incomplete-drain anomalies of h.
func Drains(h *History) ([]Anomaly, error) { return runOne(h, checkDrains) }
