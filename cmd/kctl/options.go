package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
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

// usageError is a bad flag or argument (exit status 2). It prints as one
// line: the problem, then the command whose --help explains the usage.
type usageError struct {
	message string // printed after "kctl: "
	command string // "kctl topic create"; empty for kctl itself
}

func (e *usageError) Error() string { return e.message }

// invocation is one run of kctl: its streams, context and global options.
type invocation struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	global globalOptions
	// terminal is true when stderr is a terminal; only then do long runs
	// print progress lines.
	terminal bool
	// stdoutTerminal is true when stdout is a terminal too: consume then
	// draws no progress line, which would mix with the records it prints.
	stdoutTerminal bool
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
	help   func() string // the text of --help
	output strings.Builder
}

func newFlagSet(name string, inv *invocation) *flagSet {
	f := &flagSet{fs: flag.NewFlagSet(name, flag.ContinueOnError), inv: inv}
	// The flag package prints its own error line and usage; collect and
	// drop them, so that an error is the one line exitStatus prints.
	f.fs.SetOutput(&f.output)
	f.fs.Usage = func() {}
	return f
}

// globalFlagNames are the flags globalOptions.register adds; a command's
// help lists them once, by name, rather than with every command.
var globalFlagNames = map[string]bool{"b": true, "brokers": true, "timeout": true}

// commandDefaults lists the command's own flags with their defaults:
// "-p" for one-letter names and "--topic" for longer ones, as the help
// texts and examples spell them.
func (f *flagSet) commandDefaults() string {
	var b strings.Builder
	f.fs.VisitAll(func(fl *flag.Flag) {
		if globalFlagNames[fl.Name] {
			return
		}
		dashes := "--"
		if len(fl.Name) == 1 {
			dashes = "-"
		}
		kind, usage := flag.UnquoteUsage(fl)
		fmt.Fprintf(&b, "  %s%s", dashes, fl.Name)
		if kind != "" {
			fmt.Fprintf(&b, " %s", kind)
		}
		fmt.Fprintf(&b, "\n    \t%s", usage)
		if fl.DefValue != "" && fl.DefValue != "false" && fl.DefValue != "0" {
			fmt.Fprintf(&b, " (default %s)", fl.DefValue)
		}
		b.WriteString("\n")
	})
	return b.String()
}

// parseError turns a flag package error into help or a usage error.
func (f *flagSet) parseError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(f.inv.stdout, f.help())
		return errHelp
	}
	return f.usageErrorf("%s", longFlagDashes.ReplaceAllString(err.Error(), "$1--$2"))
}

// longFlagDashes finds a long flag name in the flag package's messages,
// which spell every flag with one dash; kctl's help spells long ones with
// two.
var longFlagDashes = regexp.MustCompile(`(^|\s)-([a-z][a-z-]+)`)

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

// usageErrorf is a usage error for this command.
func (f *flagSet) usageErrorf(format string, args ...any) error {
	command := f.fs.Name()
	if command == "kctl" {
		command = ""
	}
	return &usageError{message: fmt.Sprintf(format, args...), command: command}
}

// isTerminal reports whether f is a character device (a terminal), where a
// progress line that rewrites itself is welcome; in a pipe or a file it
// would be noise.
func isTerminal(f *os.File) bool {
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// oneLine folds a multi-line message so that each error is one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
