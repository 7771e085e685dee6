package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
)

// TestUnreachableBrokerIsOneLine points kctl at a loopback port nobody
// listens on (bound, then closed) and checks that every command that needs
// a broker exits with status 1 and exactly one readable line naming the
// address and the cause.
func TestUnreachableBrokerIsOneLine(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := listener.Addr().String()
	listener.Close()
	want := "kctl: cannot reach any broker at " + addr + ": connection refused\n"
	for _, args := range [][]string{
		{"topic", "list"},
		{"topic", "create", "x"},
		{"topic", "describe", "x"},
		{"produce", "x"},
		{"consume", "x"},
		{"group", "list"},
	} {
		r := kctl(t, addr, "line\n", args...)
		if r.status != exitFailure || r.stderr != want || r.stdout != "" {
			t.Errorf("kctl %s: status %d stdout %q stderr %q, want status 1 and %q",
				strings.Join(args, " "), r.status, r.stdout, r.stderr, want)
		}
	}
}

// TestSilentBrokerHitsTimeout points kctl at a listener that accepts
// connections and never answers, and checks that --timeout ends the command
// with status 1 and a line saying no answer came; without the timeout the
// client would wait forever (the hang guard would fail the test).
func TestSilentBrokerHitsTimeout(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	go func() {
		var held []net.Conn // keep connections open and unanswered
		for {
			conn, err := listener.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, conn)
		}
	}()
	addr := listener.Addr().String()
	r := kctl(t, addr, "", "topic", "list", "--timeout", "200ms")
	want := "kctl: cannot reach any broker at " + addr + ": no answer within 200ms (--timeout)\n"
	if r.status != exitFailure || r.stderr != want {
		t.Fatalf("status %d stderr %q, want status 1 and %q", r.status, r.stderr, want)
	}
}

// TestUsageErrors checks that bad flags, missing or extra arguments and
// unknown commands exit with status 2 and print exactly one stderr line:
// "kctl: " with the problem, then the command whose --help explains it;
// the expected lines are golden (testdata/usage-errors.golden, -update
// rewrites it). None of these needs a broker, so none is contacted.
func TestUsageErrors(t *testing.T) {
	const nowhere = "127.0.0.1:1"
	cases := [][]string{
		{},
		{"frobnicate"},
		{"topic"},
		{"topic", "frobnicate"},
		{"topic", "create"},
		{"topic", "create", "x", "-p", "zero"},
		{"topic", "create", "x", "-p", "0"},
		{"topic", "create", "x", "-c", "novalue"},
		{"topic", "list", "extra"},
		{"topic", "add-partitions", "x"},
		{"topic", "config"},
		{"topic", "config", "x", "--set", "a=1", "--delete", "a"},
		{"topic", "config", "x", "--delete", "a=1"},
		{"produce"},
		{"produce", "x", "-z", "brotli"},
		{"produce", "x", "--acks", "2"},
		{"consume", "x", "y"},
		{"consume", "x", "-o", "soon"},
		{"consume", "x", "-f", "%q"},
		{"consume", "x", "--no-such-flag"},
		{"group", "describe"},
		{"group", "reset-offsets", "g", "--to-earliest"},
		{"group", "reset-offsets", "g", "--topic", "t"},
		{"group", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--to-latest"},
		{"group", "reset-offsets", "g", "--topic", "t", "--to-offset", "-3"},
		{"group", "reset-offsets", "g", "--topic", "t", "--to-datetime", "yesterday"},
		{"group", "reset-offsets", "g", "--topic", "t", "--shift-by", "many"},
		{"group", "reset-offsets", "g", "--topic", "t:x", "--to-latest"},
		{"perf"},
		{"perf", "produce", "t", "-n", "0"},
		{"perf", "produce", "t", "-s", "-1"},
		{"perf", "produce", "t", "--batch-bytes", "10"},
		{"perf", "consume"},
		{"--timeout", "0s", "topic", "list"},
		{"-b", "", "topic", "list"},
	}
	var got strings.Builder
	for _, args := range cases {
		r := kctl(t, nowhere, "", args...)
		if r.status != exitUsage || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("kctl %s: status %d, stdout %q, stderr %q; want status 2 and one stderr line",
				strings.Join(args, " "), r.status, r.stdout, r.stderr)
		}
		fmt.Fprintf(&got, "$ kctl %s\n%s", strings.Join(args, " "), r.stderr)
	}
	checkGolden(t, "usage-errors.golden", got.String())
}

// TestHelp checks that --help, -h and help print a command's description,
// flags and examples on stdout and exit 0, for kctl itself, each group of
// subcommands and every command; the texts are golden (testdata/help/).
func TestHelp(t *testing.T) {
	const nowhere = "127.0.0.1:1"
	pages := map[string][]string{"kctl": nil}
	for _, g := range commandGroups {
		if g.single != nil {
			pages[g.name] = []string{g.name}
			continue
		}
		pages[g.name] = []string{g.name}
		for _, c := range g.subcommands {
			pages[g.name+"-"+c.name] = []string{g.name, c.name}
		}
	}
	for page, args := range pages { // order-independent: each page is its own golden file
		t.Run(page, func(t *testing.T) {
			r := kctl(t, nowhere, "", append(append([]string(nil), args...), "--help")...)
			if r.status != exitOK || r.stderr != "" {
				t.Fatalf("--help: status %d stderr %q", r.status, r.stderr)
			}
			if len(args) > 0 && !strings.Contains(r.stdout, "usage: kctl "+args[0]) {
				t.Fatalf("--help prints no usage line:\n%s", r.stdout)
			}
			if len(args) != 1 || page == "produce" || page == "consume" {
				if !strings.Contains(r.stdout, "examples:\n  ") {
					t.Fatalf("--help has no examples:\n%s", r.stdout)
				}
			}
			if strings.Count(r.stdout, "usage:") != 1 {
				t.Fatalf("--help prints the usage %d times:\n%s", strings.Count(r.stdout, "usage:"), r.stdout)
			}
			for _, other := range [][]string{append([]string{"help"}, args...), append(append([]string(nil), args...), "-h")} {
				again := kctl(t, nowhere, "", other...)
				if again.status != exitOK || again.stdout != r.stdout {
					t.Fatalf("kctl %s: status %d, output differs from --help:\n%s", strings.Join(other, " "), again.status, again.stdout)
				}
			}
			checkGolden(t, "help/"+page+".golden", r.stdout)
		})
	}
}

// TestBrokersFromEnvironment checks that KCTL_BROKERS replaces the default
// seed list when -b is not given, and that -b still wins over it.
func TestBrokersFromEnvironment(t *testing.T) {
	n := startNode(t, nil)
	t.Setenv(brokersEnv, n.addr)
	var stdout, stderr strings.Builder
	if status := run([]string{"topic", "list"}, strings.NewReader(""), &stdout, &stderr); status != exitOK {
		t.Fatalf("with KCTL_BROKERS: status %d stderr %q", status, stderr.String())
	}
	stderr.Reset()
	if status := run([]string{"topic", "list", "--brokers", "127.0.0.1:1"}, strings.NewReader(""), &stdout, &stderr); status != exitFailure ||
		!strings.Contains(stderr.String(), "127.0.0.1:1") {
		t.Fatalf("--brokers did not override KCTL_BROKERS: status %d stderr %q", status, stderr.String())
	}
}
