package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/mqtape/mqtape"

// listedPackage is what `go list -deps -test -json` says about a package,
// a test variant of one ("P [P.test]", "P_test [P.test]") or a test main.
type listedPackage struct {
	ImportPath   string
	ForTest      string
	Standard     bool
	Imports      []string
	TestImports  []string
	XTestImports []string
	Deps         []string
	Error        *struct{ Err string }
}

// importRules name a library and the only package of this module that may
// import it, in its code or its tests.
var importRules = []struct {
	lib, only string
}{
	{"github.com/eclipse/paho.mqtt.golang", "mqttclient"},
	{"github.com/eclipse/paho.golang", "mqttclient"},
	{"github.com/mochi-mqtt/server", "broker"},
	{"github.com/rivo/tview", "inspector"},
	{"github.com/gdamore/tcell", "inspector"},
	{"modernc.org/sqlite", "storage"},
	{"github.com/bufbuild/protocompile", "decode"},
	{"github.com/parquet-go/parquet-go", "export"},
	// klauspost/compress (zstd) has no rule: storage compresses payloads
	// with it and export Parquet pages and MCAP chunks.
}

// forbiddenDeps: a package (its code and its tests) must not depend,
// directly or not, on these packages of this module.
var forbiddenDeps = map[string][]string{
	"recorder":   {"replay", "inspector"},
	"replay":     {"recorder", "inspector"},
	"inspector":  {"recorder"},
	"mqttclient": {"storage", "recorder", "replay", "inspector"},
	// decode knows MQTT messages and the codec libraries, not captures:
	// export, inspect and diff hand it payloads.
	"decode": {"storage", "recorder", "replay", "inspector", "export", "diff", "cli"},
	// web reads captures through storage and export; it knows no broker
	// and not the terminal UI.
	"web": {"recorder", "replay", "inspector", "mqttclient", "broker", "cli"},
	// filter is the query language: storage queries, not the UI.
	"filter": {"inspector", "recorder", "replay", "cli"},
}

// knownViolations break the rules today, each for the reason given, keyed
// like the error they would raise ("PKG imports LIB", "PKG depends on DEP";
// PKG is "P" for a package's code, "P (tests)" for what only its tests
// add). Nothing else may join them unnoticed, and each must still occur:
// once it is fixed, the test fails until its line here is deleted.
var knownViolations = map[string]string{
	"bench/replay imports github.com/eclipse/paho.mqtt.golang": "replaybench paholoop is the bare-paho baseline " +
		"that bench/replay/run.sh compares play against",
}

// TestDependencyDirection enforces the layering in STYLE.md for every
// package of the module and its tests (go list -deps -test): paho only in
// mqttclient, mochi only in broker, tview/tcell only in inspector, the
// SQLite driver only in storage, parquet-go only in export; mqtt and mcap
// depend on the standard library only;
// storage on the standard library, the SQLite driver, klauspost/compress (zstd)
// and mqtt only;
// recorder and replay never import each other; inspector never imports
// recorder; topic and timespec are leaves; mqttclient knows no capture;
// decode (the only protocompile importer) knows no capture either.
// The end-to-end tests in e2e/ may import any package of the module (and
// are held to the library rules like every package).
func TestDependencyDirection(t *testing.T) {
	pkgs := listPackages(t)
	var violations []string
	found := map[string]bool{}
	report := func(key, how string) {
		if _, known := knownViolations[key]; known {
			found[key] = true
			return
		}
		violations = append(violations, key+how)
	}

	// Direct imports, by the code and by the tests.
	for _, p := range pkgs.own() {
		name := pkgs.name(p.ImportPath)
		test := slices.Concat(p.TestImports, p.XTestImports)
		for _, r := range importRules {
			if name == r.only {
				continue
			}
			for _, imp := range p.Imports {
				if under(imp, r.lib) {
					report(fmt.Sprintf("%s imports %s", name, imp), fmt.Sprintf(": only %s may import %s", r.only, r.lib))
				}
			}
			for _, imp := range test {
				if under(imp, r.lib) && !slices.Contains(p.Imports, imp) {
					report(fmt.Sprintf("%s (tests) imports %s", name, imp), fmt.Sprintf(": only %s may import %s, in tests too", r.only, r.lib))
				}
			}
		}
	}

	// Everything a package depends on, through its code and its tests. A
	// dependency reached only through another one already reported is not
	// reported again.
	sqlite := pkgs.byPath["modernc.org/sqlite"]
	if sqlite == nil {
		t.Fatal("go list did not list modernc.org/sqlite: does storage still use it?")
	}
	depRule := func(name string, ok func(dep string) bool, rule string) {
		pkgs.eachDep(t, name, func(label, dep string) {
			if ok(dep) {
				return
			}
			chain := pkgs.why(label, name, dep)
			if len(chain) < 2 { // no path found (an external test package): say so, not panic
				report(fmt.Sprintf("%s depends on %s", label, pkgs.name(dep)), ": "+rule)
				return
			}
			for _, via := range chain[1 : len(chain)-1] {
				if !ok(via) {
					return
				}
			}
			names := make([]string, len(chain))
			for i, c := range chain {
				names[i] = pkgs.name(c)
			}
			report(fmt.Sprintf("%s depends on %s", label, pkgs.name(dep)), fmt.Sprintf(" (%s): %s", strings.Join(names, " → "), rule))
		})
	}
	depRule("mqtt", pkgs.standard, "mqtt may depend on the standard library only")
	depRule("mcap", pkgs.standard, "mcap (the MCAP writer) may depend on the standard library only")
	depRule("storage", func(dep string) bool {
		return pkgs.standard(dep) || dep == module+"/mqtt" || dep == "modernc.org/sqlite" || slices.Contains(sqlite.Deps, dep) ||
			under(dep, "github.com/klauspost/compress")
	}, "storage may depend on the standard library, modernc.org/sqlite (with what it needs), klauspost/compress (zstd) and mqtt only")
	for _, name := range slices.Sorted(maps.Keys(forbiddenDeps)) {
		forbidden := forbiddenDeps[name]
		depRule(name, func(dep string) bool { return !slices.Contains(forbidden, pkgs.name(dep)) }, "forbidden by the layering")
	}
	for _, leaf := range []string{"topic", "timespec"} {
		depRule(leaf, func(dep string) bool { return !under(dep, module) }, leaf+" is a leaf of the module")
	}

	sort.Strings(violations)
	for _, v := range violations {
		t.Errorf("dependency rule broken: %s", v)
	}
	for key, why := range knownViolations {
		if !found[key] {
			t.Errorf("known violation %q no longer occurs: delete it from knownViolations in deps_test.go (it said: %s)", key, why)
		}
	}
}

// packages indexes a `go list -deps -test` listing.
type packages struct {
	all    []*listedPackage
	byPath map[string]*listedPackage // by ImportPath, test variants included
}

func listPackages(t *testing.T) *packages {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-deps", "-test",
		"-json=ImportPath,ForTest,Standard,Imports,TestImports,XTestImports,Deps,Error", module+"/...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	ps := &packages{byPath: map[string]*listedPackage{}}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		p := new(listedPackage)
		if err := dec.Decode(p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Error != nil {
			t.Errorf("go list %s: %s", p.ImportPath, p.Error.Err)
		}
		ps.all = append(ps.all, p)
		ps.byPath[p.ImportPath] = p
	}
	if n := len(ps.own()); n < 10 {
		t.Fatalf("go list saw only %d packages of the module", n)
	}
	return ps
}

// own returns the module's packages as they are built for use, not tests.
func (ps *packages) own() []*listedPackage {
	var own []*listedPackage
	for _, p := range ps.all {
		if p.ForTest == "" && under(p.ImportPath, module) && !strings.HasSuffix(p.ImportPath, ".test") {
			own = append(own, p)
		}
	}
	return own
}

// eachDep calls f for every dependency of package name (relative to the
// module) and of its tests: label is "name" for the package's own code,
// "name (tests)" for what only its tests add.
func (ps *packages) eachDep(t *testing.T, name string, f func(label, dep string)) {
	t.Helper()
	path := module + "/" + name
	p := ps.byPath[path]
	if p == nil {
		t.Errorf("go list did not list %s: the rules in deps_test.go name a package that no longer exists", path)
		return
	}
	for _, dep := range p.Deps {
		f(name, dep)
	}
	for _, v := range ps.all {
		if v.ForTest != path {
			continue
		}
		for _, dep := range v.Deps {
			dep = base(dep)
			if dep != path && !slices.Contains(p.Deps, dep) {
				f(name+" (tests)", dep)
			}
		}
	}
}

// why returns an import chain from package name (its code, or its tests
// when label says so) to dep, both ends included, test variants stripped.
func (ps *packages) why(label, name, dep string) []string {
	path := module + "/" + name
	starts := []string{path}
	if strings.HasSuffix(label, "(tests)") {
		starts = nil
		for _, v := range ps.all {
			if v.ForTest == path {
				starts = append(starts, v.ImportPath)
			}
		}
	}
	prev := map[string]string{}
	queue := slices.Clone(starts)
	for _, s := range starts {
		prev[s] = ""
	}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if base(cur) == dep {
			var chain []string
			for at := cur; at != ""; at = prev[at] {
				chain = append(chain, base(at))
			}
			slices.Reverse(chain)
			return chain
		}
		p := ps.byPath[cur]
		if p == nil {
			continue
		}
		for _, imp := range p.Imports {
			if _, seen := prev[imp]; !seen {
				prev[imp] = cur
				queue = append(queue, imp)
			}
		}
	}
	return []string{path, dep} // no chain found: name both ends
}

// standard reports whether path is in the standard library.
func (ps *packages) standard(path string) bool {
	if p := ps.byPath[path]; p != nil {
		return p.Standard
	}
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// name shortens a path of this module to its name relative to the module.
func (ps *packages) name(path string) string {
	if path == module {
		return "main"
	}
	return strings.TrimPrefix(path, module+"/")
}

// base strips the test variant from a listed path ("P [P.test]" → "P").
func base(path string) string {
	p, _, _ := strings.Cut(path, " [")
	return p
}

// under reports whether path is root or inside it.
func under(path, root string) bool {
	return path == root || strings.HasPrefix(path, root+"/")
}
