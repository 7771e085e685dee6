package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Defaults of the global flags.
const (
	brokersDefault = "127.0.0.1:9092"
	brokersEnv     = "KCTL_BROKERS"
	timeoutDefault = 5 * time.Second
)

// errHelp ends a command that printed its help on request (exit status 0).
var errHelp = errors.New("help requested")

// errReported ends a command whose failures were already printed line by
// line (exit status 1).
var errReported = errors.New("failures reported")

// usageError is a bad flag or argument (exit status 2).
type usageError struct {
	message string // printed after "kctl: ", if not empty
	usage   string // printed after the message, if not empty
}

func (e *usageError) Error() string { return e.message }

// invocation is one run of kctl: its streams, context and global options.
type invocation struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	global globalOptions
}

// globalOptions are the flags every command accepts.
type globalOptions struct {
	brokers string
	timeout time.Duration
}

func defaultGlobalOptions() globalOptions {
	g := globalOptions{brokers: brokersDefault, timeout: timeoutDefault}
	if env := strings.TrimSpace(os.Getenv(brokersEnv)); env != "" {
		g.brokers = env
	}
	return g
}

// register adds the global flags to fs. Each flag's default is the value
// already parsed, so that "kctl -b X topic list" keeps X when the
// subcommand's flags are parsed.
func (g *globalOptions) register(fs *flagSet) {
	fs.fs.StringVar(&g.brokers, "b", g.brokers, "seed brokers, host:port[,...]")
	fs.fs.StringVar(&g.brokers, "brokers", g.brokers, "seed brokers, host:port[,...] (same as -b)")
	fs.fs.DurationVar(&g.timeout, "timeout", g.timeout, "bound on connecting and on each admin request")
}

// seeds returns the broker list, or a usage error when it is empty.
func (g *globalOptions) seeds() ([]string, error) {
	var seeds []string
	for _, s := range strings.Split(g.brokers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	if len(seeds) == 0 {
		return nil, &usageError{message: "-b/--brokers is empty"}
	}
	if g.timeout <= 0 {
		return nil, &usageError{message: fmt.Sprintf("--timeout %v must be positive", g.timeout)}
	}
	return seeds, nil
}

// flagSet wraps flag.FlagSet with our usage text and interleaved parsing.
type flagSet struct {
	fs     *flag.FlagSet
	inv    *invocation
	usage  string // the text printed before the flag defaults
	output strings.Builder
}

func newFlagSet(name string, inv *invocation) *flagSet {
	f := &flagSet{fs: flag.NewFlagSet(name, flag.ContinueOnError), inv: inv}
	// The flag package prints its own error line; collect it so that it
	// reaches stderr once, followed by the usage.
	f.fs.SetOutput(&f.output)
	f.fs.Usage = func() {}
	return f
}

// fullUsage is the usage text followed by the flag defaults.
func (f *flagSet) fullUsage() string {
	var b strings.Builder
	b.WriteString(f.usage)
	f.fs.SetOutput(&b)
	f.fs.PrintDefaults()
	f.fs.SetOutput(&f.output)
	return b.String()
}

// parseError turns a flag package error into help or a usage error.
func (f *flagSet) parseError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(f.inv.stdout, f.fullUsage())
		return errHelp
	}
	return &usageError{message: err.Error(), usage: f.fullUsage()}
}

// parseInterleaved parses flags placed before, between or after positional
// arguments ("topic create NAME -p 3"), as users of rpk and kafka-topics.sh
// expect; everything after "--" is positional.
func (f *flagSet) parseInterleaved(args []string) ([]string, error) {
	var positional []string
	for {
		if err := f.fs.Parse(args); err != nil {
			return nil, f.parseError(err)
		}
		rest := f.fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// usageErrorf is a usage error for this command with its usage text.
func (f *flagSet) usageErrorf(format string, args ...any) error {
	return &usageError{message: fmt.Sprintf(format, args...), usage: f.fullUsage()}
}

// oneLine folds a multi-line message so that each error is one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
