package mqtapetest_test

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mqtape/mqtape/diff"
	"github.com/mqtape/mqtape/mqtapetest"
	"github.com/mqtape/mqtape/mqtt"
)

// tb records the errors a Fixture reports instead of failing the test.
type tb struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *tb) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *tb) failures() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.errors, "\n")
}

// TestFixtureCatchesRegressions runs the example's bridge with a bug (the
// wrong conversion factor): Compare must report the changed fields.
func TestFixtureCatchesRegressions(t *testing.T) {
	rt := &tb{TB: t}
	f := mqtapetest.New(rt)
	startBridge(t, f.URL(), 1.9)
	out := f.Record("fahrenheit/#")
	f.Replay("../testdata/captures/smart-home.db", 500)
	f.Compare(out, "testdata/fahrenheit.golden.db", mqtapetest.IgnoreFields("converted_at"))
	got := rt.failures()
	if !strings.Contains(got, "differs from testdata/fahrenheit.golden.db") || !strings.Contains(got, "f: ") ||
		!strings.Contains(got, "fahrenheit/kitchen") {
		t.Fatalf("the regression was not reported:\n%s", got)
	}
	// Without ignoring converted_at, even the correct bridge differs.
	rt = &tb{TB: t}
	f = mqtapetest.New(rt)
	startBridge(t, f.URL(), 1.8)
	out = f.Record("fahrenheit/#")
	f.Replay("../testdata/captures/smart-home.db", 500)
	f.Compare(out, "testdata/fahrenheit.golden.db")
	if got := rt.failures(); !strings.Contains(got, "converted_at") {
		t.Fatalf("converted_at compared equal:\n%s", got)
	}
}

// TestUpdateWritesGolden: with -update, Compare writes the golden capture,
// and the next run compares equal with it.
func TestUpdateWritesGolden(t *testing.T) {
	golden := filepath.Join(t.TempDir(), "sub", "golden.db")
	run := func() *tb {
		rt := &tb{TB: t}
		f := mqtapetest.New(rt)
		c := f.Connect("device", mqtt.Handlers{})
		out := f.Record("dev/#")
		for i := range 5 {
			<-c.Publish("dev/x", 1, i == 4, []byte(fmt.Sprintf(`{"i":%d}`, i))).Done()
		}
		f.Compare(out, golden, mqtapetest.CountTolerance(0))
		return rt
	}
	if err := flag.Set("update", "true"); err != nil {
		t.Fatal(err)
	}
	rt := run()
	flag.Set("update", "false")
	if rt.failures() != "" || mqtapetest.Updating() {
		t.Fatalf("update: %s", rt.failures())
	}
	if rt := run(); rt.failures() != "" {
		t.Fatalf("compare with the fresh golden capture: %s", rt.failures())
	}
	report, err := mqtapetest.CompareFiles(golden, golden, diff.Options{})
	if err != nil || !report.Equal || report.A.Messages != 5 {
		t.Fatalf("golden capture: %+v %v", report, err)
	}
}
