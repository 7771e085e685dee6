package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit statuses, as the shell sees them.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	// Ctrl-C ends a long consume cleanly (the deferred client Close runs)
	// instead of killing the process mid-write.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	inv := newInvocation(ctx, os.Stdin, os.Stdout, os.Stderr)
	inv.terminal = isTerminal(os.Stderr)
	inv.stdoutTerminal = isTerminal(os.Stdout)
	status := inv.run(os.Args[1:])
	stop()
	os.Exit(status)
}

// run executes one kctl command line and returns its exit status. Tests call
// it in-process; main adds signal handling through runContext.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdin, stdout, stderr)
}

// runContext is run with a context that interrupts a long-running command.
func runContext(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return newInvocation(ctx, stdin, stdout, stderr).run(args)
}

func newInvocation(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) *invocation {
	inv := &invocation{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	inv.global = defaultGlobalOptions()
	return inv
}

// run dispatches args and maps the outcome to the exit status.
func (inv *invocation) run(args []string) int {
	return exitStatus(dispatch(inv, args), inv.stderr)
}

// exitStatus prints err (if it was not printed already) and maps it to the
// exit status. A usage error is one line: the problem and where help is.
func exitStatus(err error, stderr io.Writer) int {
	var usage *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &usage):
		help := usage.command
		if help == "" {
			help = "kctl"
		}
		fmt.Fprintf(stderr, "kctl: %s (run '%s --help' for usage)\n", oneLine(usage.message), help)
		return exitUsage
	case errors.Is(err, errReported):
		return exitFailure
	default:
		fmt.Fprintf(stderr, "kctl: %s\n", oneLine(err.Error()))
		return exitFailure
	}
}

// commandGroups lists the top-level commands and, for topic, group and perf,
// their subcommands.
var commandGroups = []struct {
	name        string
	summary     string // for groups of subcommands: one sentence for "kctl --help"
	subcommands []command
	single      *command
}{
	{name: "topic", summary: "Create, list, describe, configure and delete topics.", subcommands: topicCommands},
	{name: "produce", single: &produceCommand},
	{name: "consume", single: &consumeCommand},
	{name: "cluster", single: &clusterCommand},
	{name: "group", summary: "List, describe, delete consumer groups and reset their offsets.", subcommands: groupCommands},
	{name: "perf", summary: "Measure produce and consume throughput and latency.", subcommands: perfCommands},
}

// command is one kctl subcommand.
type command struct {
	name     string
	synopsis string // the argument syntax after the command's name
	summary  string // one sentence for the command lists
	// description is the paragraph of the command's --help.
	description string
	// examples are command lines with a comment each, for --help.
	examples []string
	// flags registers the command's own flags and returns the function that
	// runs the command with its positional arguments.
	flags func(fs *flagSet) func(inv *invocation, args []string) error
}

// dispatch parses the global flags, picks the command and runs it.
func dispatch(inv *invocation, args []string) error {
	top := newFlagSet("kctl", inv)
	top.help = topHelp
	inv.global.register(top)
	if err := top.fs.Parse(args); err != nil {
		return top.parseError(err)
	}
	args = top.fs.Args()
	if len(args) == 0 {
		return &usageError{message: "no command given"}
	}
	if args[0] == "help" {
		if len(args) == 1 {
			fmt.Fprint(inv.stdout, topHelp())
			return errHelp
		}
		// "kctl help topic create" is "kctl topic create --help".
		return dispatch(inv, append(append([]string(nil), args[1:]...), "--help"))
	}
	for _, g := range commandGroups {
		if g.name != args[0] {
			continue
		}
		if g.single != nil {
			return runCommand(inv, "kctl "+g.name, *g.single, args[1:])
		}
		return dispatchSubcommand(inv, g.name, g.summary, g.subcommands, args[1:])
	}
	return &usageError{message: fmt.Sprintf("unknown command %q", args[0])}
}

func dispatchSubcommand(inv *invocation, group, summary string, subcommands []command, args []string) error {
	name := "kctl " + group
	if len(args) == 0 {
		return &usageError{message: group + " needs a subcommand", command: name}
	}
	for _, c := range subcommands {
		if c.name == args[0] {
			return runCommand(inv, name+" "+c.name, c, args[1:])
		}
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		fmt.Fprint(inv.stdout, groupHelp(group, summary, subcommands))
		return errHelp
	}
	return &usageError{message: fmt.Sprintf("unknown subcommand %q of %s", args[0], group), command: name}
}

// runCommand parses one command's flags (global flags included) and runs it.
func runCommand(inv *invocation, name string, c command, args []string) error {
	fs := newFlagSet(name, inv)
	execute := c.flags(fs)
	fs.help = func() string { return commandHelp(name, c, fs) }
	inv.global.register(fs)
	positional, err := fs.parseInterleaved(args)
	if err != nil {
		return err
	}
	return execute(inv, positional)
}

// topHelp is the text of "kctl --help".
func topHelp() string {
	var b strings.Builder
	b.WriteString("kctl is the admin and console tool for Kafka-compatible brokers: topics, consumer groups,\n" +
		"producing and consuming from the terminal, and throughput tests.\n\n" +
		"usage: kctl [-b brokers] [--timeout duration] COMMAND ...\n\ncommands:\n")
	for _, g := range commandGroups {
		if g.single != nil {
			fmt.Fprintf(&b, "  %s\n", strings.TrimSpace("kctl "+g.name+" "+g.single.synopsis))
			continue
		}
		for _, c := range g.subcommands {
			fmt.Fprintf(&b, "  %s\n", strings.TrimSpace("kctl "+g.name+" "+c.name+" "+c.synopsis))
		}
	}
	b.WriteString("\nglobal flags (before or after the command):\n" +
		"  -b, --brokers host:port[,...]  seed brokers (default $" + brokersEnv + " or " + brokersDefault + ")\n" +
		"  --timeout duration             bound on connecting, on each admin request and on delivering\n" +
		"                                 one produced record (default " + timeoutDefault.String() + ")\n" +
		"\nexamples:\n" +
		"  kctl topic create orders -p 3          # a topic with 3 partitions\n" +
		"  seq 10 | kctl produce orders           # one record per line of stdin\n" +
		"  kctl consume orders -e                 # print every record, then exit\n" +
		"  kctl -b 10.0.0.5:9092 group list       # another cluster\n" +
		"\nRun 'kctl COMMAND --help' (or 'kctl help COMMAND') for a command's description, flags and examples.\n" +
		"Exit status: 0 success, 1 a request failed or no broker answered, 2 a bad flag or argument.\n")
	return b.String()
}

// groupHelp is the text of "kctl topic --help" and its siblings.
func groupHelp(group, summary string, subcommands []command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\nusage: kctl %s SUBCOMMAND ...\n\nsubcommands:\n", summary, group)
	for _, c := range subcommands {
		fmt.Fprintf(&b, "  %-15s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(&b, "\nRun 'kctl %s SUBCOMMAND --help' for a subcommand's description, flags and examples.\n", group)
	return b.String()
}

// commandHelp is the text of "kctl COMMAND --help": summary, usage,
// description, the command's own flags and examples.
func commandHelp(name string, c command, fs *flagSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\nusage: %s\n", c.summary, strings.TrimSpace(name+" "+c.synopsis))
	if c.description != "" {
		fmt.Fprintf(&b, "\n%s\n", strings.TrimRight(c.description, "\n"))
	}
	if flags := fs.commandDefaults(); flags != "" {
		fmt.Fprintf(&b, "\nflags:\n%s", flags)
	}
	b.WriteString("\nglobal flags: -b/--brokers, --timeout (see 'kctl --help')\n")
	if len(c.examples) > 0 {
		b.WriteString("\nexamples:\n")
		for _, e := range c.examples {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	return b.String()
}
