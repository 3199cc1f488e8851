//go:build inspectbench

package inspector

import (
	"os"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"
)

// TestLargeCapture times the main steps in-process on a big capture from
// bench/inspect/gen. A measurement, not a unit test: built only with the
// inspectbench tag, so CI neither runs nor skips it.
//
//	go run ./bench/inspect/gen -n 1000000 -o /tmp/1m.db
//	MQTAPE_INSPECT_CAPTURE=/tmp/1m.db go test -tags inspectbench ./inspector -run LargeCapture -v
func TestLargeCapture(t *testing.T) {
	path := os.Getenv("MQTAPE_INSPECT_CAPTURE")
	if path == "" {
		t.Fatal("set MQTAPE_INSPECT_CAPTURE to a capture from bench/inspect/gen")
	}
	begin := time.Now()
	h := start(t, path, Options{}, 160, 50)
	t.Logf("%-40s %v", "first screen and topic counts", time.Since(begin).Round(time.Millisecond))
	for _, s := range []struct {
		name string
		keys []any
	}{
		{"End", []any{tcell.KeyEnd}},
		{"Home", []any{tcell.KeyHome}},
		{"jump :5m", []any{':', "5m", tcell.KeyEnter}},
		{"jump :09:12:00", []any{':', "09:12:00", tcell.KeyEnter}},
		{"PgDn", []any{tcell.KeyPgDn}},
		{"topic filter plant/3/line/2/temp", []any{'/', "plant/3/line/2/temp", tcell.KeyEnter}},
		{"End (filtered)", []any{tcell.KeyEnd}},
		{"topic filter plant/+/line/+/temp", []any{'/', tcell.KeyCtrlU, "plant/+/line/+/temp", tcell.KeyEnter}},
		{"topic filter plant/#", []any{'/', tcell.KeyCtrlU, "plant/#", tcell.KeyEnter}},
		{"jump :2m (filtered)", []any{':', "2m", tcell.KeyEnter}},
		{"payload ALARM", []any{'/', tcell.KeyCtrlU, "ALARM", tcell.KeyEnter}},
		{"payload~overheat$", []any{'/', tcell.KeyCtrlU, "payload~overheat$", tcell.KeyEnter}},
		{"clear filter", []any{'/', tcell.KeyEscape}},
	} {
		begin := time.Now()
		h.press(s.keys...)
		t.Logf("%-40s %v", s.name, time.Since(begin).Round(time.Millisecond))
	}
}
