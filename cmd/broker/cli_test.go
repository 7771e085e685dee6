package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// update rewrites the golden files from the binary's output:
// go test ./cmd/broker/ -run TestHelp -update
var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestHelp checks that --help (and -h) exits 0 and prints the description,
// flags and examples of testdata/help.golden on stdout, with nothing on
// stderr.
func TestHelp(t *testing.T) {
	golden := filepath.Join("testdata", "help.golden")
	for _, arg := range []string{"--help", "-h"} {
		status, stdout, stderr := runBrokerOutput(t, arg)
		if *update && arg == "--help" {
			if err := os.WriteFile(golden, []byte(stdout), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if status != 0 || stdout != string(want) || stderr != "" {
			t.Fatalf("broker %s: status %d, stderr %q, stdout:\n%s\nwant status 0 and %s", arg, status, stderr, stdout, golden)
		}
	}
}

// TestArgumentErrors checks the exact output of command-line mistakes: one
// line naming the problem and pointing to --help, exit status 2, and no
// usage dump.
func TestArgumentErrors(t *testing.T) {
	const hint = "; run 'broker --help' for usage\n"
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--no-such-flag"}, "broker: unknown flag --no-such-flag" + hint},
		{[]string{"-x"}, "broker: unknown flag --x" + hint},
		{[]string{"--config"}, "broker: flag --config needs a value" + hint},
		{[]string{"server.properties"}, `broker: unexpected argument "server.properties" (did you mean --config server.properties?)` + hint},
		{[]string{"--log-level", "loud"}, `broker: --log-level "loud" is not debug, info, warn or error` + hint},
	}
	for _, c := range cases {
		status, stdout, stderr := runBrokerOutput(t, c.args...)
		if status != 2 || stderr != c.want || stdout != "" {
			t.Errorf("broker %q: status %d, stdout %q, stderr:\n%q\nwant status 2 and:\n%q", c.args, status, stdout, stderr, c.want)
		}
	}
}
