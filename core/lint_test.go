package core_test

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"sort"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"
)

// deterministicPatterns are the packages whose behaviour must be a pure
// function of the seed: they see time, randomness, I/O and scheduling only
// through the core interfaces.
var deterministicPatterns = []string{
	"./core/...", "./broker/...", "./client/...", "./checker/...", "./sim/...",
}

// forbiddenImports reach the world around the environment interfaces.
var forbiddenImports = map[string]string{
	"os":                                "use core.FS",
	"os/exec":                           "deterministic code runs no processes",
	"os/signal":                         "deterministic code handles no signals",
	"net":                               "use core.Network",
	"net/http":                          "use core.Network",
	"syscall":                           "use core.FS",
	"math/rand":                         "use core.Rand",
	"math/rand/v2":                      "use core.Rand",
	"crypto/rand":                       "use core.Rand",
	"runtime/debug":                     "deterministic code does not tune the runtime",
	"github.com/kafkasim/kafkasim/disk": "use core.FS",
	"github.com/kafkasim/kafkasim/net":  "use core.Network",
}

// forbiddenProjectImports keeps layers apart beyond determinism: the checker
// judges histories and must not share code (and so bugs) with the broker it
// judges.
var forbiddenProjectImports = map[string][]string{
	"github.com/kafkasim/kafkasim/checker": {"github.com/kafkasim/kafkasim/broker"},
}

// forbiddenTime are the functions of package time that read the wall clock or
// wait on it. Durations and time.Time values are fine.
var forbiddenTime = map[string]bool{
	"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
	"Tick": true, "NewTimer": true, "NewTicker": true, "AfterFunc": true,
}

// unorderedMarker must appear in a comment on, or on the line above, every
// range over a map, stating why the iteration order cannot leak.
const unorderedMarker = "order-independent"

// TestDeterministicPackagesStayDeterministic loads every deterministic
// package with full type information and fails on each construct that would
// let a run depend on something other than its seed.
func TestDeterministicPackagesStayDeterministic(t *testing.T) {
	pkgs := loadPackages(t, deterministicPatterns...)
	if len(pkgs) == 0 {
		t.Fatal("no packages loaded")
	}
	var violations []string
	for _, pkg := range pkgs {
		violations = append(violations, checkPackage(pkg)...)
	}
	for _, v := range violations {
		t.Error(v)
	}
}

// TestLintCatchesEveryViolation runs the same checks over a package written
// to break every rule once, so that the lint above cannot pass by accident.
func TestLintCatchesEveryViolation(t *testing.T) {
	pkgs := loadPackages(t, "./core/testdata/lintbad")
	if len(pkgs) != 1 {
		t.Fatalf("loaded %d packages, want 1", len(pkgs))
	}
	got := strings.Join(checkPackage(pkgs[0]), "\n")
	for _, want := range []string{
		`imports "os"`, `imports "math/rand"`, `imports "crypto/rand"`, `imports "net"`,
		"time.Now", "time.Sleep", "time.AfterFunc",
		"go statement", "select statement", "channel send", "channel receive",
		"range over a map",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("lint missed %q; it reported:\n%s", want, got)
		}
	}
	if strings.Count(got, "range over a map") != 1 {
		t.Errorf("want exactly one map-range report (the annotated one is allowed), got:\n%s", got)
	}
}

func loadPackages(t *testing.T, patterns ...string) []*packages.Package {
	t.Helper()
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedSyntax |
			packages.NeedTypes | packages.NeedTypesInfo | packages.NeedImports,
		Dir: "..",
	}
	pkgs, err := packages.Load(cfg, patterns...)
	if err != nil {
		t.Fatalf("load %v: %v", patterns, err)
	}
	for _, pkg := range pkgs {
		for _, e := range pkg.Errors {
			t.Fatalf("package %s does not load: %v", pkg.PkgPath, e)
		}
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].PkgPath < pkgs[j].PkgPath })
	return pkgs
}

func checkPackage(pkg *packages.Package) []string {
	var out []string
	for _, file := range pkg.Syntax {
		out = append(out, checkFile(pkg, file)...)
	}
	return out
}

func checkFile(pkg *packages.Package, file *ast.File) []string {
	fset := pkg.Fset
	var out []string
	report := func(pos token.Pos, format string, args ...any) {
		out = append(out, fmt.Sprintf("%s: %s", fset.Position(pos), fmt.Sprintf(format, args...)))
	}
	for _, imp := range file.Imports {
		path := strings.Trim(imp.Path.Value, `"`)
		if why, bad := forbiddenImports[path]; bad {
			report(imp.Pos(), "imports %q (%s)", path, why)
		}
	}
	for prefix, banned := range forbiddenProjectImports { // order-independent: every match is reported
		if !strings.HasPrefix(pkg.PkgPath, prefix) {
			continue
		}
		for _, imp := range file.Imports {
			path := strings.Trim(imp.Path.Value, `"`)
			for _, b := range banned {
				if path == b || strings.HasPrefix(path, b+"/") {
					report(imp.Pos(), "imports %q: %s must not depend on it", path, prefix)
				}
			}
		}
	}
	commentLines := commentLineSet(fset, file)
	ast.Inspect(file, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			report(n.Pos(), "go statement: deterministic code starts no goroutines")
		case *ast.SelectStmt:
			report(n.Pos(), "select statement: deterministic code does not wait on channels")
		case *ast.SendStmt:
			report(n.Pos(), "channel send: deterministic code does not use channels")
		case *ast.UnaryExpr:
			if n.Op == token.ARROW {
				report(n.Pos(), "channel receive: deterministic code does not use channels")
			}
		case *ast.SelectorExpr:
			if fn, ok := pkg.TypesInfo.Uses[n.Sel].(*types.Func); ok && fn.Pkg() != nil &&
				fn.Pkg().Path() == "time" && forbiddenTime[fn.Name()] {
				report(n.Pos(), "time.%s reads or waits on the wall clock: use core.Clock", fn.Name())
			}
		case *ast.RangeStmt:
			if isMap(pkg.TypesInfo.TypeOf(n.X)) {
				line := fset.Position(n.Pos()).Line
				if !commentLines[line] && !commentLines[line-1] {
					report(n.Pos(), "range over a map: sort the keys, or say why the order cannot leak with a comment containing %q", unorderedMarker)
				}
			}
		}
		return true
	})
	return out
}

// commentLineSet returns the lines that carry a comment with unorderedMarker.
func commentLineSet(fset *token.FileSet, file *ast.File) map[int]bool {
	lines := make(map[int]bool)
	for _, group := range file.Comments {
		for _, c := range group.List {
			if strings.Contains(c.Text, unorderedMarker) {
				lines[fset.Position(c.Pos()).Line] = true
			}
		}
	}
	return lines
}

func isMap(t types.Type) bool {
	if t == nil {
		return false
	}
	_, ok := t.Underlying().(*types.Map)
	return ok
}
