package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
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
	status := runContext(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
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
	inv := &invocation{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	inv.global = defaultGlobalOptions()
	err := dispatch(inv, args)
	return exitStatus(err, stderr)
}

// exitStatus prints err (if it was not printed already) and maps it to the
// exit status.
func exitStatus(err error, stderr io.Writer) int {
	var usage *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &usage):
		if usage.message != "" {
			fmt.Fprintf(stderr, "kctl: %s\n", usage.message)
		}
		if usage.usage != "" {
			fmt.Fprint(stderr, usage.usage)
		}
		return exitUsage
	case errors.Is(err, errReported):
		return exitFailure
	default:
		fmt.Fprintf(stderr, "kctl: %s\n", oneLine(err.Error()))
		return exitFailure
	}
}

// commandGroups lists the top-level commands and, for topic and group, their
// subcommands.
var commandGroups = []struct {
	name        string
	subcommands []command
	single      *command
}{
	{name: "topic", subcommands: topicCommands},
	{name: "produce", single: &produceCommand},
	{name: "consume", single: &consumeCommand},
	{name: "group", subcommands: groupCommands},
}

// command is one kctl subcommand.
type command struct {
	name     string
	synopsis string // the argument syntax after the command's name
	summary  string // one sentence for the usage text
	// flags registers the command's own flags and returns the function that
	// runs the command with its positional arguments.
	flags func(fs *flagSet) func(inv *invocation, args []string) error
}

// dispatch parses the global flags, picks the command and runs it.
func dispatch(inv *invocation, args []string) error {
	top := newFlagSet("kctl", inv)
	top.usage = topUsage()
	inv.global.register(top)
	if err := top.fs.Parse(args); err != nil {
		return top.parseError(err)
	}
	args = top.fs.Args()
	if len(args) == 0 || args[0] == "help" {
		if len(args) == 0 {
			return &usageError{message: "no command given", usage: topUsage()}
		}
		fmt.Fprint(inv.stdout, topUsage())
		return nil
	}
	for _, g := range commandGroups {
		if g.name != args[0] {
			continue
		}
		if g.single != nil {
			return runCommand(inv, "kctl "+g.name, *g.single, args[1:])
		}
		return dispatchSubcommand(inv, g.name, g.subcommands, args[1:])
	}
	return &usageError{message: fmt.Sprintf("unknown command %q", args[0]), usage: topUsage()}
}

func dispatchSubcommand(inv *invocation, group string, subcommands []command, args []string) error {
	if len(args) == 0 {
		return &usageError{message: "kctl " + group + " needs a subcommand", usage: groupUsage(group, subcommands)}
	}
	for _, c := range subcommands {
		if c.name == args[0] {
			return runCommand(inv, "kctl "+group+" "+c.name, c, args[1:])
		}
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(inv.stdout, groupUsage(group, subcommands))
		return nil
	}
	return &usageError{
		message: fmt.Sprintf("unknown subcommand %q of kctl %s", args[0], group),
		usage:   groupUsage(group, subcommands),
	}
}

// runCommand parses one command's flags (global flags included) and runs it.
func runCommand(inv *invocation, name string, c command, args []string) error {
	fs := newFlagSet(name, inv)
	fs.usage = fmt.Sprintf("usage: %s %s\n\n%s\n\nflags:\n", name, c.synopsis, c.summary)
	execute := c.flags(fs)
	inv.global.register(fs)
	positional, err := fs.parseInterleaved(args)
	if err != nil {
		return err
	}
	return execute(inv, positional)
}

func topUsage() string {
	text := "usage: kctl [-b brokers] [--timeout duration] COMMAND ...\n\ncommands:\n"
	for _, g := range commandGroups {
		if g.single != nil {
			text += fmt.Sprintf("  kctl %s %s\n", g.name, g.single.synopsis)
			continue
		}
		for _, c := range g.subcommands {
			text += fmt.Sprintf("  kctl %s %s %s\n", g.name, c.name, c.synopsis)
		}
	}
	text += "\nglobal flags (before or after the command):\n" +
		"  -b, --brokers host:port[,...]  seed brokers (default $KCTL_BROKERS or " + brokersDefault + ")\n" +
		"  --timeout duration             bound on connecting and on each admin request (default 5s)\n" +
		"\nRun kctl COMMAND -h for a command's flags.\n"
	return text
}

func groupUsage(group string, subcommands []command) string {
	text := fmt.Sprintf("usage: kctl %s SUBCOMMAND ...\n\nsubcommands:\n", group)
	for _, c := range subcommands {
		text += fmt.Sprintf("  %-15s %s\n", c.name, c.summary)
	}
	return text
}
