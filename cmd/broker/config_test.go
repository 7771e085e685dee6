package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadConfigurationExitsWithAClearError runs the binary with bad
// configurations and arguments and checks that each exits with status 1
// and a message naming what is wrong, before binding any port (the
// started line never appears).
func TestBadConfigurationExitsWithAClearError(t *testing.T) {
	dir := t.TempDir()
	writeFile := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	unknown := writeFile("unknown.properties", "listeners=PLAINTEXT://127.0.0.1:0\nlog.flush.interval.mesages=1\n")
	badValue := writeFile("bad-value.properties", "listeners=PLAINTEXT://127.0.0.1:0\nnum.partitions=lots\n")
	badListener := writeFile("bad-listener.properties", "listeners=SSL://127.0.0.1:9093\n")
	cases := []struct {
		name string
		args []string
		want []string // substrings of stderr
	}{
		{"unknown key", []string{"--config", unknown}, []string{`unknown setting "log.flush.interval.mesages"`, "line 2"}},
		{"bad value", []string{"--config", badValue}, []string{"num.partitions", `"lots" is not an integer`}},
		{"bad listener", []string{"--config", badListener}, []string{"only PLAINTEXT is supported"}},
		{"missing file", []string{"--config", filepath.Join(dir, "absent.properties")}, []string{"--config", "absent.properties"}},
		{"extra argument", []string{"extra-arg"}, []string{`unexpected argument "extra-arg"`}},
		{"unknown flag", []string{"--no-such-flag"}, []string{"flag provided but not defined: -no-such-flag"}},
		{"bad log level", []string{"--config", writeFile("ok.properties", "listeners=127.0.0.1:0\nlog.dirs="+dir+"\n"), "--log-level", "loud"},
			[]string{"--log-level"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, stderr := runBroker(t, c.args...)
			if status != 1 {
				t.Fatalf("exit status %d, want 1; stderr:\n%s", status, stderr)
			}
			for _, want := range c.want {
				if !strings.Contains(stderr, want) {
					t.Fatalf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			if strings.Contains(stderr, "broker started") {
				t.Fatalf("the broker started despite the error:\n%s", stderr)
			}
		})
	}
}
