package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/kafkasim/kafkasim/sim/scenario"
)

// Bounds of the arguments.
const (
	// seedsMax bounds one sweep: at about 0.1 s per seed and core it is
	// already years of work, so a larger count is a typo.
	seedsMax = 1_000_000_000
	// parallelMax bounds the runs held in memory at once (each holds a
	// simulated disk and a history).
	parallelMax = 256
)

// errHelp means --help (or -h) was given.
var errHelp = errors.New("help requested")

// options are the parsed arguments.
type options struct {
	seed   uint64
	seeds  int64 // 0 means a single run
	faults scenario.Faults
	// swarm runs each seed with a random subset of faults (swarm testing,
	// scenario.Swarm): by default with --faults all, never with a list
	// unless --swarm is given.
	swarm bool

	// Single-run flags.
	tracePath, historyPath, htmlPath, reportPath string
	quorumHistoryPath                            string
	quiet, shrink                                bool
	// faultEvents are the fault events --fault-events keeps, nil without
	// the flag (and empty for --fault-events none).
	faultEvents []scenario.FaultEventID

	// Sweep flags.
	parallel               int64
	shardIndex, shardCount int64 // shardIndex counts from 1
}

// sweep reports whether the options ask for a sweep of several seeds.
func (o options) sweep() bool { return o.seeds > 0 }

// singleRunFlags do not apply to a sweep; sweepFlags apply only to one.
var (
	singleRunFlags = []string{"trace", "history", "quorum-history", "html", "report", "quiet", "shrink", "fault-events"}
	sweepFlags     = []string{"parallel", "shard"}
)

// parseOptions reads args. An error is one line naming the problem; it is
// errHelp when help was asked for.
func parseOptions(args []string, cpus int) (options, error) {
	o := options{seed: 1, shrink: true, parallel: int64(min(max(cpus, 1), parallelMax)), shardIndex: 1, shardCount: 1}
	flags, faultsText, swarm := newFlagSet(&o)
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, errHelp
		}
		return o, errors.New(doubleDash(err.Error()))
	}
	if flags.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q: every option is a flag, such as --seed 7", flags.Arg(0))
	}
	faults, err := scenario.ParseFaults(*faultsText)
	if err != nil {
		return o, fmt.Errorf("--faults: %v", err)
	}
	o.faults = faults
	set := setFlags(flags)
	o.swarm = scenario.SwarmByDefault(faults)
	if set["swarm"] {
		o.swarm = *swarm
	}
	return o, o.checkMode(set)
}

// newFlagSet defines every flag, writing into o. The flag package prints
// nothing: run prints one line per error, and helpText on --help.
func newFlagSet(o *options) (*flag.FlagSet, *string, *bool) {
	flags := flag.NewFlagSet("sim", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	flags.Usage = func() {}
	flags.Var((*seedValue)(&o.seed), "seed", "")
	flags.Var(&numberValue{&o.seeds, 1, seedsMax}, "seeds", "")
	faultsText := flags.String("faults", "all", "")
	// Its default depends on --faults, so parseOptions reads it only when
	// it was given.
	swarm := flags.Bool("swarm", true, "")
	flags.StringVar(&o.tracePath, "trace", "", "")
	flags.StringVar(&o.historyPath, "history", "", "")
	flags.StringVar(&o.quorumHistoryPath, "quorum-history", "", "")
	flags.StringVar(&o.htmlPath, "html", "", "")
	flags.StringVar(&o.reportPath, "report", "", "")
	flags.BoolVar(&o.quiet, "quiet", false, "")
	flags.BoolVar(&o.shrink, "shrink", true, "")
	flags.Var((*faultEventsValue)(&o.faultEvents), "fault-events", "")
	flags.Var(&numberValue{&o.parallel, 1, parallelMax}, "parallel", "")
	flags.Var(&shardValue{&o.shardIndex, &o.shardCount}, "shard", "")
	return flags, faultsText, swarm
}

// doubleDash writes the flag's name in the flag package's messages as
// this command's help and docs do, "--seeds" rather than "-seeds". The
// last match is the one to change: a quoted value that the user typed may
// come earlier in the message.
func doubleDash(message string) string {
	for _, before := range []string{"for flag -", "for -", "not defined: -", "argument: -"} {
		if i := strings.LastIndex(message, before); i >= 0 {
			at := i + len(before)
			return message[:at] + "-" + message[at:]
		}
	}
	return message
}

// setFlags returns the names of the flags given on the command line.
func setFlags(flags *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	flags.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// checkMode rejects flags that the chosen mode would otherwise ignore,
// and a sweep whose last seed does not fit in 64 bits.
func (o options) checkMode(set map[string]bool) error {
	if o.sweep() {
		if misplaced := given(set, singleRunFlags); misplaced != "" {
			return fmt.Errorf("%s %s not apply to a sweep (--seeds); rerun one seed with its reproduce command to use %s", misplaced, doOrDoes(misplaced), them(misplaced))
		}
		if o.seed > math.MaxUint64-uint64(o.seeds-1) {
			return fmt.Errorf("--seed %d with --seeds %d goes past the largest seed, %d", o.seed, o.seeds, uint64(math.MaxUint64))
		}
		return nil
	}
	if misplaced := given(set, sweepFlags); misplaced != "" {
		return fmt.Errorf("%s %s only to a sweep; add --seeds COUNT", misplaced, applyOrApplies(misplaced))
	}
	return nil
}

// given lists, as "--a, --b", the names that were set.
func given(set map[string]bool, names []string) string {
	var found []string
	for _, name := range names {
		if set[name] {
			found = append(found, "--"+name)
		}
	}
	return strings.Join(found, ", ")
}

func plural(list string) bool { return strings.Contains(list, ",") }

func doOrDoes(list string) string {
	if plural(list) {
		return "do"
	}
	return "does"
}

func applyOrApplies(list string) string {
	if plural(list) {
		return "apply"
	}
	return "applies"
}

func them(list string) string {
	if plural(list) {
		return "them"
	}
	return "it"
}

// numberValue is a flag holding a whole number in [low, high].
type numberValue struct {
	n         *int64
	low, high int64
}

func (v *numberValue) String() string {
	if v == nil || v.n == nil {
		return ""
	}
	return strconv.FormatInt(*v.n, 10)
}

// Set accepts only a whole number in range; the flag package puts the
// value and the flag's name before the error.
func (v *numberValue) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < v.low || n > v.high {
		return fmt.Errorf("want a whole number from %d to %d", v.low, v.high)
	}
	*v.n = n
	return nil
}

// seedValue is the --seed flag: any 64-bit unsigned number.
type seedValue uint64

func (v *seedValue) String() string {
	if v == nil {
		return ""
	}
	return strconv.FormatUint(uint64(*v), 10)
}

// Set accepts any whole number that fits in 64 unsigned bits.
func (v *seedValue) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("want a whole number from 0 to %d", uint64(math.MaxUint64))
	}
	*v = seedValue(n)
	return nil
}

// shardValue is the --shard flag, "I/N": run the I-th of N shares of the
// seeds.
type shardValue struct{ index, count *int64 }

func (v *shardValue) String() string {
	if v == nil || v.index == nil {
		return ""
	}
	return fmt.Sprintf("%d/%d", *v.index, *v.count)
}

// Set reads "I/N" with 1 <= I <= N <= seedsMax.
func (v *shardValue) Set(s string) error {
	indexText, countText, found := strings.Cut(s, "/")
	index, errIndex := strconv.ParseInt(indexText, 10, 64)
	count, errCount := strconv.ParseInt(countText, 10, 64)
	if !found || errIndex != nil || errCount != nil || index < 1 || index > count || count > seedsMax {
		return errors.New("want I/N with 1 <= I <= N, such as 2/4 for the second of four shards")
	}
	*v.index, *v.count = index, count
	return nil
}

// faultEventsValue is the --fault-events flag: "none" or a list of fault
// events such as crash#3,partition#1 (scenario.ParseFaultEvents).
type faultEventsValue []scenario.FaultEventID

func (v *faultEventsValue) String() string {
	if v == nil || *v == nil {
		return ""
	}
	return scenario.FormatFaultEvents(*v)
}

// Set reads the list; the flag package puts the value and the flag's name
// before the error.
func (v *faultEventsValue) Set(s string) error {
	ids, err := scenario.ParseFaultEvents(s)
	if err != nil {
		return err
	}
	*v = ids
	return nil
}
