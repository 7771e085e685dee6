package main

import (
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
// unknown commands exit with status 2 and print a "kctl:" line followed by
// usage text, while -h and help exit 0 with usage on stdout. None of these
// needs a broker, so none is contacted (the address is never dialled).
func TestUsageErrors(t *testing.T) {
	const nowhere = "127.0.0.1:1"
	cases := []struct {
		args []string
		want string // in the first stderr line
	}{
		{[]string{}, "no command given"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"topic"}, "kctl topic needs a subcommand"},
		{[]string{"topic", "frobnicate"}, `unknown subcommand "frobnicate"`},
		{[]string{"topic", "create"}, "no topic name given"},
		{[]string{"topic", "create", "x", "-p", "zero"}, `invalid value "zero" for flag -p`},
		{[]string{"topic", "create", "x", "-p", "0"}, "-p 0"},
		{[]string{"topic", "create", "x", "-c", "novalue"}, `"novalue" is not key=value`},
		{[]string{"topic", "list", "extra"}, "takes no arguments"},
		{[]string{"topic", "add-partitions", "x"}, "-n 0"},
		{[]string{"produce"}, "exactly one topic"},
		{[]string{"produce", "x", "-z", "brotli"}, `unknown codec "brotli"`},
		{[]string{"produce", "x", "--acks", "2"}, `unknown acks "2"`},
		{[]string{"consume", "x", "y"}, "exactly one topic"},
		{[]string{"consume", "x", "-o", "soon"}, `"soon" is not start, end`},
		{[]string{"consume", "x", "-f", "%q"}, "unknown directive %q"},
		{[]string{"consume", "x", "--no-such-flag"}, "flag provided but not defined: -no-such-flag"},
		{[]string{"group", "describe"}, "no group name given"},
		{[]string{"--timeout", "0s", "topic", "list"}, "--timeout 0s must be positive"},
		{[]string{"-b", "", "topic", "list"}, "-b/--brokers is empty"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := kctl(t, nowhere, "", c.args...)
			first, _, _ := strings.Cut(r.stderr, "\n")
			if r.status != exitUsage || !strings.HasPrefix(first, "kctl: ") || !strings.Contains(first, c.want) {
				t.Fatalf("status %d, first stderr line %q; want status 2 and %q", r.status, first, c.want)
			}
			if !strings.Contains(r.stderr, "usage: kctl") && !strings.Contains(first, "must be positive") && !strings.Contains(first, "is empty") {
				t.Fatalf("no usage text after the error: %q", r.stderr)
			}
		})
	}
	for _, args := range [][]string{{"help"}, {"-h"}, {"topic", "create", "-h"}, {"group", "help"}, {"consume", "--help"}} {
		r := kctl(t, nowhere, "", args...)
		if r.status != exitOK || !strings.Contains(r.stdout, "usage: kctl") || r.stderr != "" {
			t.Errorf("kctl %s: status %d stdout %q stderr %q", strings.Join(args, " "), r.status, r.stdout, r.stderr)
		}
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
