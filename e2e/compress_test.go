package e2e

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/loadgen"
	"github.com/mqtape/mqtape/internal/testbroker"
)

// exportRawLines runs `mqtape export FILE` and returns its lines.
func exportRawLines(t *testing.T, path string, args ...string) []string {
	t.Helper()
	code, out, errb := runCLI(t, context.Background(), append([]string{"export", path}, args...)...)
	if code != exitOK {
		t.Fatalf("export %s: exit %d: %s", path, code, errb)
	}
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
}

// topicPayloads returns "topic payload_b64" of each exported line, sorted:
// what two recorders of the same traffic both hold.
func topicPayloads(t *testing.T, lines []string) []string {
	t.Helper()
	var out []string
	for _, l := range lines {
		var m struct {
			Topic   string `json:"topic"`
			Payload string `json:"payload_b64"`
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("export line %q: %v", l, err)
		}
		out = append(out, m.Topic+" "+m.Payload)
	}
	slices.Sort(out)
	return out
}

// TestRecordCompress: `record --compress` beside a plain recorder of the
// same JSON telemetry over TCP: both hold the same messages, the compressed
// capture exports exactly like its uncompressed cut, info shows the ratio,
// check passes, merge of a compressed and a plain capture (with and without
// --compress) holds both, and a damaged compressed payload is exit 4 for
// export and check while recover keeps every other message.
func TestRecordCompress(t *testing.T) {
	ctx := context.Background()
	b := startBroker(t)
	dir := t.TempDir()
	zipped, plain := filepath.Join(dir, "zip.db"), filepath.Join(dir, "plain.db")
	const n = 3000
	count := strconv.Itoa(n)
	waitZip := recordCLI(t, ctx, zipped, "--broker", b.URL(), "-t", "dev/#", "--count", count, "--quiet", "--compress")
	waitPlain := recordCLI(t, ctx, plain, "--broker", b.URL(), "-t", "dev/#", "--count", count, "--quiet")
	if _, err := loadgen.Run(ctx, loadgen.Config{Addr: b.Addr(), Devices: 10, Messages: n, QoS: 1, Topic: "dev", Telemetry: true}); err != nil {
		t.Fatal(err)
	}
	for _, wait := range []func() (int, string, string){waitZip, waitPlain} {
		if code, _, errb := wait(); code != exitOK {
			t.Fatalf("record: exit %d: %s", code, errb)
		}
	}

	zipLines := exportRawLines(t, zipped)
	if got, want := topicPayloads(t, zipLines), topicPayloads(t, exportRawLines(t, plain)); !slices.Equal(got, want) || len(got) != n {
		t.Fatalf("the compressed capture holds %d messages, the plain one %d, or they differ", len(got), len(want))
	}
	cut := filepath.Join(dir, "cut.db")
	if code, _, errb := runCLI(t, ctx, "cut", zipped, "-o", cut, "--quiet"); code != exitOK {
		t.Fatalf("cut: exit %d: %s", code, errb)
	}
	if got := exportRawLines(t, cut); !slices.Equal(got, zipLines) {
		t.Error("export of the compressed capture differs from export of its uncompressed cut")
	}
	if code, out, errb := runCLI(t, ctx, "diff", zipped, cut); code != exitOK {
		t.Errorf("diff of the compressed capture and its uncompressed cut: exit %d\n%s%s", code, out, errb)
	}
	playCompressed(t, zipped, n)

	code, out, _ := runCLI(t, ctx, "info", "--json", zipped)
	var info struct {
		Totals struct {
			Payload int64   `json:"payload_bytes"`
			Stored  int64   `json:"stored_bytes"`
			Ratio   float64 `json:"compression_ratio"`
		} `json:"totals"`
	}
	if err := json.Unmarshal([]byte(out), &info); code != exitOK || err != nil || info.Totals.Ratio <= 0 || info.Totals.Ratio >= 0.8 ||
		info.Totals.Stored >= info.Totals.Payload {
		t.Errorf("info --json: exit %d, %+v (%v)", code, info.Totals, err)
	}
	t.Logf("payload %d bytes, stored %d (ratio %.3f)", info.Totals.Payload, info.Totals.Stored, info.Totals.Ratio)
	if code, out, _ := runCLI(t, ctx, "info", zipped); code != exitOK || !strings.Contains(out, "payloads zstd-compressed to ") {
		t.Errorf("info: exit %d, no compression line:\n%s", code, out)
	}
	if code, out, errb := runCLI(t, ctx, "check", zipped); code != exitOK {
		t.Errorf("check: exit %d\n%s%s", code, out, errb)
	}
	for _, compress := range []bool{false, true} {
		merged := filepath.Join(dir, fmt.Sprintf("merged-%v.db", compress))
		args := []string{"merge", zipped, plain, "-o", merged, "--quiet"}
		if compress {
			args = append(args, "--compress")
		}
		if code, _, errb := runCLI(t, ctx, args...); code != exitOK {
			t.Fatalf("merge: exit %d: %s", code, errb)
		}
		if got := exportRawLines(t, merged); len(got) != 2*n {
			t.Errorf("merge --compress=%v: %d messages, want %d", compress, len(got), 2*n)
		}
	}
	damaged(t, zipped, n)
}

// playCompressed replays the compressed capture at path (n telemetry
// messages) to a broker: a subscriber receives every payload as published.
func playCompressed(t *testing.T, path string, n int) {
	t.Helper()
	b := startBroker(t)
	sub := testbroker.Subscribe(t, b.URL())
	if code, out, errb := runCLI(t, context.Background(), "play", "--speed", "max", "-b", b.URL(), path); code != exitOK {
		t.Fatalf("play: exit %d\n%s%s", code, out, errb)
	}
	seen := map[string]bool{}
	for _, m := range sub.Wait(t, n) {
		d, i, ok := loadgen.ParsePayload([]byte(m.Body))
		if !ok || m.Body != string(loadgen.Telemetry(d, i)) || m.Topic != loadgen.TopicOf("dev", d) {
			t.Fatalf("played %s %q: not what was published", m.Topic, m.Body)
		}
		seen[m.Body] = true
	}
	if len(seen) != n {
		t.Errorf("played %d different payloads, want %d", len(seen), n)
	}
}

// TestServeCompress: `serve --compress` stores what publishers send
// compressed, and reads it back as sent.
func TestServeCompress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serve.db")
	addr, stop := serveCLI(t, path, "--compress")
	const n = 2000
	if _, err := loadgen.Run(context.Background(), loadgen.Config{Addr: addr, Devices: 4, Messages: n, QoS: 1, Topic: "dev", Telemetry: true}); err != nil {
		t.Fatal(err)
	}
	if code, errb := stop(); code != exitOK {
		t.Fatalf("serve: exit %d: %s", code, errb)
	}
	lines := exportRawLines(t, path)
	if len(lines) != n {
		t.Fatalf("serve recorded %d messages, want %d", len(lines), n)
	}
	for _, l := range lines {
		var m struct{ Payload string }
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		if d, i, ok := loadgen.ParsePayload([]byte(m.Payload)); !ok || m.Payload != string(loadgen.Telemetry(d, i)) {
			t.Fatalf("exported %q: not what was published", m.Payload)
		}
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var compressed int
	if err := db.QueryRow("SELECT count(*) FROM messages WHERE zstd_dict IS NOT NULL").Scan(&compressed); err != nil || compressed < n/2 {
		t.Errorf("%d of %d messages stored compressed (%v)", compressed, n, err)
	}
}

// damaged damages one compressed payload of the capture at path (n
// messages) in each way below and checks what the verbs make of it.
func damaged(t *testing.T, path string, n int) {
	t.Helper()
	const last = "(SELECT max(seq) FROM messages WHERE zstd_dict IS NOT NULL)"
	for name, stmt := range map[string]string{
		// ff ff ff at the start: a literals section larger than a block
		// can be (no checksum guards the rest of a block: damage there
		// may decode to other bytes of the same length).
		"block": "UPDATE messages SET payload = CAST(x'ffffff' || substr(payload, 4) AS BLOB) WHERE seq = " + last,
		// A small row claiming 64 MiB (refused before it is allocated).
		"bomb": "UPDATE messages SET payload_size = 67108864 WHERE seq = " + last,
	} {
		t.Run(name, func(t *testing.T) { damagedBy(t, path, n, stmt) })
	}
}

func damagedBy(t *testing.T, path string, n int, stmt string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.db")
	code, _, errb := runCLI(t, ctx, "cut", "--compress", path, "-o", bad, "--quiet")
	if code != exitOK {
		t.Fatalf("cut --compress: exit %d: %s", code, errb)
	}
	db, err := sql.Open("sqlite", bad) // registered by storage
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(stmt)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"export", bad}, {"play", "--dry-run", bad}, {"cut", bad, "-o", filepath.Join(dir, "x.db")}, {"check", bad}} {
		code, _, errb := runCLI(t, ctx, args...)
		if code != exitCapture || (args[0] != "check" && !strings.Contains(errb, "compressed payload is damaged")) {
			t.Errorf("%s of a damaged compressed payload: exit %d, want %d: %s", args[0], code, exitCapture, errb)
		}
	}
	out := filepath.Join(dir, "recovered.db")
	code, stdout, errb := runCLI(t, ctx, "recover", bad, "-o", out)
	if code != exitOK || !strings.Contains(stdout+errb, "compressed payload is damaged") {
		t.Errorf("recover: exit %d: %s%s", code, stdout, errb)
	}
	if got := exportRawLines(t, out); len(got) != n-1 {
		t.Errorf("recover kept %d messages, want %d", len(got), n-1)
	}
}

// TestCompressSqlite3Recipe: what docs/capture-format.md tells a sqlite3
// user to do gives each compressed payload as published, with the real
// sqlite3 and zstd tools: the dictionaries and zstd_frames' frames of a
// format 6 capture (made by cut --compress), and the payload column of
// the format 5 fixture. It skips without the tools, except in CI.
func TestCompressSqlite3Recipe(t *testing.T) {
	sqlite3 := testbroker.Binary(t, "sqlite3", "sqlite3")
	zstd := testbroker.Binary(t, "zstd", "zstd")
	ctx := context.Background()
	dir := t.TempDir()
	var src strings.Builder
	for i := range 1200 {
		fmt.Fprintf(&src, `{"topic":%q,"qos":1,"payload":%q}`+"\n", loadgen.TopicOf("dev", i%10), loadgen.Telemetry(i%10, i/10))
	}
	in, plain, zipped := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "plain.db"), filepath.Join(dir, "zip.db")
	if err := os.WriteFile(in, []byte(src.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	v5, err := os.ReadFile("../storage/testdata/compressed-v5.db")
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "v5.db"), v5, 0o600) // sqlite3 may add files beside it
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"import", "--quiet", in, "-o", plain}, {"cut", "--compress", "--quiet", plain, "-o", zipped}} {
		if code, _, errb := runCLI(t, ctx, args...); code != exitOK {
			t.Fatalf("%s: exit %d: %s", args[0], code, errb)
		}
	}
	for _, tc := range []struct{ path, from, column string }{
		{zipped, "zstd_frames", "frame"},
		{filepath.Join(dir, "v5.db"), "messages", "payload"},
	} {
		payloads := map[string]string{} // seq → payload_b64, as mqtape exports it
		for _, l := range exportRawLines(t, tc.path) {
			var m struct {
				Seq     int64  `json:"seq"`
				Payload string `json:"payload_b64"`
			}
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatal(err)
			}
			payloads[strconv.FormatInt(m.Seq, 10)] = m.Payload
		}
		sh := func(name string, args ...string) []byte {
			t.Helper()
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, name, args...)
			cmd.Dir = dir
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s %q: %v", filepath.Base(name), args, err)
			}
			return out
		}
		sh(sqlite3, tc.path, "SELECT writefile('dict-' || id, dict) FROM zstd_dicts")
		seqs := strings.Fields(string(sh(sqlite3, tc.path, "SELECT seq FROM messages WHERE zstd_dict = 1 AND (seq % 97 = 0 OR payload_size > 1000)")))
		if len(seqs) < 10 {
			t.Fatalf("%s: %d compressed messages to try", tc.path, len(seqs))
		}
		for _, seq := range seqs {
			sh(sqlite3, tc.path, fmt.Sprintf("SELECT writefile('m.zst', %s) FROM %s WHERE seq = %s", tc.column, tc.from, seq))
			got := base64.StdEncoding.EncodeToString(sh(zstd, "-q", "-d", "-D", "dict-1", "m.zst", "-c"))
			if got != payloads[seq] {
				t.Fatalf("%s seq %s: zstd gives %.40s…, mqtape exports %.40s…", tc.path, seq, got, payloads[seq])
			}
		}
	}
}

// TestCompressV5Capture: the format 5 fixture (whole zstd frames, written
// before format 6) passes check and exports exactly like its uncompressed
// cut, including its payloads of several, raw and RLE blocks.
func TestCompressV5Capture(t *testing.T) {
	const v5 = "../storage/testdata/compressed-v5.db"
	ctx := context.Background()
	if code, out, errb := runCLI(t, ctx, "check", v5); code != exitOK {
		t.Fatalf("check: exit %d\n%s%s", code, out, errb)
	}
	cut := filepath.Join(t.TempDir(), "cut.db")
	if code, _, errb := runCLI(t, ctx, "cut", v5, "-o", cut, "--quiet"); code != exitOK {
		t.Fatalf("cut: exit %d: %s", code, errb)
	}
	got, want := exportRawLines(t, v5), exportRawLines(t, cut)
	if len(got) != 1206 || !slices.Equal(got, want) {
		t.Errorf("export of the format 5 capture (%d lines) differs from export of its uncompressed cut (%d)", len(got), len(want))
	}
}
