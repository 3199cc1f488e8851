package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/storage"
)

func TestParseExport(t *testing.T) {
	tests := []struct {
		args []string
		ok   bool
		chk  func(exportOptions) bool
	}{
		{[]string{"c.db"}, true, func(o exportOptions) bool {
			return o.format == "jsonl" && o.out == "" && slices.Equal(o.files, []string{"c.db"}) && o.query.Match == nil
		}},
		{[]string{"--format", "ndjson", "c.db"}, true, func(o exportOptions) bool { return o.format == "jsonl" }},
		{[]string{"--format", "json", "c.db"}, true, func(o exportOptions) bool { return o.format == "jsonl" }},
		{[]string{"--format", "csv", "-o", "x.csv", "c.db"}, true, func(o exportOptions) bool { return o.format == "csv" && o.out == "x.csv" }},
		{[]string{"--format", "parquet", "-o", "x.parquet", "a.db", "b.db", "-t", "a/#", "-x", "a/b", "--session", "2", "--quiet"}, true,
			func(o exportOptions) bool {
				return o.format == "parquet" && slices.Equal(o.files, []string{"a.db", "b.db"}) && o.query.Session == 2 &&
					o.query.Match("a/c") && !o.query.Match("a/b") && o.quiet && o.sel.selective()
			}},
		{[]string{"--format", "mcap", "--output", "-", "c.db"}, true, func(o exportOptions) bool { return o.format == "mcap" && o.out == "-" }},
		{[]string{"--format", "parquet", "c.db"}, false, nil},
		{[]string{"--format", "mcap", "c.db"}, false, nil},
		{[]string{"--format", "xml", "c.db"}, false, nil},
		{[]string{"--format", "parquet", "-o", "x.parquet"}, false, nil},
		{[]string{"c.db", "--from", "2m", "--to", "1m"}, false, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			o, err := parseExport(tt.args, testIO())
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && exitCode(err) != exitUsage {
				t.Errorf("exit %d for %v, want 2", exitCode(err), err)
			}
			if tt.ok && !tt.chk(o) {
				t.Errorf("options %+v", o)
			}
		})
	}
}

// TestExportOutputFile: -o writes the same bytes as stdout, ndjson is
// jsonl, several captures are read as one, an interrupted
// export leaves no file, and a binary format never goes to a terminal.
func TestExportOutputFile(t *testing.T) {
	a := capturetest.WriteOffsets(t, []storage.Message{capturetest.Msg(time.Millisecond, "a", 0, "1")})
	b := capturetest.WriteOffsets(t, []storage.Message{capturetest.Msg(time.Millisecond, "b", 1, "2")})
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"export", a, b}, &stdout, &stderr); code != exitOK {
		t.Fatalf("export: exit %d\n%s", code, stderr.String())
	}
	if lines := strings.Split(strings.TrimSpace(stdout.String()), "\n"); len(lines) != 2 ||
		!strings.Contains(lines[0], `"topic":"a"`) || !strings.Contains(lines[1], `"topic":"b"`) {
		t.Fatalf("two captures: %q", stdout.String())
	}
	out := filepath.Join(dir, "x.jsonl")
	if code := run(context.Background(), []string{"export", "--format", "ndjson", "-o", out, a, b}, &bytes.Buffer{}, &stderr); code != exitOK {
		t.Fatalf("export -o: exit %d\n%s", code, stderr.String())
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, stdout.Bytes()) {
		t.Errorf("-o %s: %q, want %q", out, got, stdout.Bytes())
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	gone := filepath.Join(dir, "gone.parquet")
	if code := run(ctx, []string{"export", "--format", "parquet", "-o", gone, a}, &bytes.Buffer{}, &bytes.Buffer{}); code != exitInterrupted {
		t.Errorf("interrupted: exit %d, want 130", code)
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		t.Errorf("interrupted export left files: %v", left)
	}

	cio := testIO()
	cio.stdoutTTY = true
	err := cmdExport(context.Background(), []string{"--format", "parquet", "-o", "-", a}, cio)
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "stdout is a terminal") {
		t.Errorf("parquet to a terminal: %v", err)
	}
}
