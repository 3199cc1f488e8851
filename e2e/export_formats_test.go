package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/storage"
)

// exportParts writes the captures the export round trips read: part 1 has
// two sessions (unicode topics, binary, empty and 1 MiB payloads, MQTT 5
// properties, client ids, retained and duplicate flags), part 2 one
// session, and an empty capture (a session without messages). It returns
// their paths and every message in the order export writes them.
func exportParts(t *testing.T) (parts []string, want []storage.Message) {
	t.Helper()
	dir := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	big[100] = 0xff                                        // not UTF-8
	format := byte(1)
	props := &mqtt.Properties{ContentType: "application/json", PayloadFormat: &format,
		UserProperties: []mqtt.UserProperty{{Key: "k", Value: "v"}, {Key: "k", Value: "w"}}}
	t0 := int64(1_796_000_000_123_456_789) // above 2^53: must stay exact
	msg := func(off time.Duration, topic string, qos byte, payload []byte) storage.Message {
		return storage.Message{TimeNS: t0 + int64(off), OffsetNS: int64(off), Topic: topic, QoS: qos, Payload: payload}
	}
	s1 := []storage.Message{
		msg(1*time.Millisecond, "plant/line1/temp", 1, []byte(`{"t":21.5,"unit":"C"}`)),
		msg(2*time.Millisecond, "ферма/温度/🌡", 0, []byte("température ✓")),
		msg(3*time.Millisecond, "bin/frame", 2, []byte{0, 1, 2, 0xff, 0xfe, '\n'}),
		msg(4*time.Millisecond, "empty", 0, nil),
		msg(5*time.Millisecond, "big/blob", 1, big),
		msg(6*time.Millisecond, "plant/line1/temp", 1, []byte(`{"t":21.6,"unit":"C"}`)),
	}
	s1[0].Retain, s1[0].FromStore = true, true
	s1[1].Dup, s1[1].PacketID = true, 7
	s1[5].Props, s1[5].ClientID = props, "sensor-7"
	s2 := []storage.Message{msg(time.Hour+time.Millisecond, "plant/line1/temp", 0, []byte("22"))}
	s2[0].OffsetNS = int64(time.Millisecond)
	p3 := []storage.Message{msg(2*time.Hour, "text/plain", 0, []byte("hello\tworld\x1b[2J"))}
	parts = []string{filepath.Join(dir, "part1.db"), filepath.Join(dir, "empty.db"), filepath.Join(dir, "part3.db")}
	serve := storage.SessionInfo{Source: "serve", Broker: "mqtt://127.0.0.1:1883", ClientID: "mqtape-serve", Protocol: 5,
		CleanSession: true, StartedNS: t0, Version: "test", Host: "h"}
	capturetest.Write(t, parts[0], capturetest.Session{Info: serve, Messages: s1},
		capturetest.Session{Messages: s2, Info: storage.SessionInfo{StartedNS: t0 + int64(time.Hour)}})
	capturetest.Write(t, parts[1], capturetest.Session{Info: storage.SessionInfo{StartedNS: t0}})
	capturetest.Write(t, parts[2], capturetest.Session{Messages: p3})
	// Several captures are read as one (storage.OpenSet, as every verb
	// reads them): in time order, seq and sessions numbered anew.
	set, err := storage.OpenSet(context.Background(), parts, storage.MergeOptions{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	for m, err := range set.Messages(context.Background(), storage.Query{}) {
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, m)
	}
	if len(want) != 8 {
		t.Fatalf("fixture: %d messages", len(want))
	}
	return parts, want
}

// hyparquetFile is what e2e/js/readparquet.mjs prints.
type hyparquetFile struct {
	CreatedBy string `json:"created_by"`
	NumRows   int64  `json:"num_rows"`
	Schema    []struct {
		Name, Type, Repetition string
		Logical                *struct {
			Type, Unit      string
			IsAdjustedToUTC bool
		}
	}
	Groups []struct {
		Rows           int64
		Codecs         []string
		TopicEncodings []string
	}
	Rows []map[string]any
}

func readHyparquet(t *testing.T, node, path string) hyparquetFile {
	t.Helper()
	out, err := exec.Command(node, filepath.Join("js", "readparquet.mjs"), path).Output()
	if err != nil {
		t.Fatalf("hyparquet could not read %s: %v\n%s", path, err, stderrOf(err))
	}
	var f hyparquetFile
	if err := json.Unmarshal(out, &f); err != nil {
		t.Fatalf("readparquet.mjs: %v\n%.2000s", err, out)
	}
	return f
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// TestExportParquetHyparquet exports three parts (one empty) into one
// Parquet file and reads it back with hyparquet, a JavaScript reader
// independent of the Go library that wrote it: the schema the issue names
// (types, logical types, nullability), zstd, a dictionary for topics, and
// every value of every message.
func TestExportParquetHyparquet(t *testing.T) {
	node := nodeWith(t, "hyparquet")
	parts, want := exportParts(t)
	out := filepath.Join(t.TempDir(), "all.parquet")
	code, stdout, stderr := runCLI(t, context.Background(), append([]string{"export", "--format", "parquet", "-o", out}, parts...)...)
	if code != exitOK || stdout != "" || !strings.Contains(stderr, "exported 8 messages from "+strings.Join(parts, " ")+" to "+out) {
		t.Fatalf("export: exit %d\nstdout %q\nstderr %s", code, stdout, stderr)
	}
	f := readHyparquet(t, node, out)
	if f.NumRows != int64(len(want)) || len(f.Rows) != len(want) || !strings.HasPrefix(f.CreatedBy, "mqtape version ") {
		t.Fatalf("footer: %d rows (%d read), created_by %q", f.NumRows, len(f.Rows), f.CreatedBy)
	}
	checkParquetSchema(t, f)
	for _, g := range f.Groups {
		if strings.Join(g.Codecs, ",") != "ZSTD" || !strings.Contains(strings.Join(g.TopicEncodings, ","), "RLE_DICTIONARY") {
			t.Errorf("row group: codecs %v, topic encodings %v", g.Codecs, g.TopicEncodings)
		}
	}
	for i, m := range want {
		checkParquetRow(t, f.Rows[i], &m)
	}
}

func checkParquetSchema(t *testing.T, f hyparquetFile) {
	t.Helper()
	type col struct{ typ, rep, logical string }
	wantCols := []struct {
		name string
		col
	}{
		{"seq", col{"INT64", "REQUIRED", "INTEGER"}}, {"session", col{"INT64", "REQUIRED", "INTEGER"}},
		{"ts_ns", col{"INT64", "REQUIRED", "INTEGER"}}, {"time", col{"INT64", "REQUIRED", "TIMESTAMP NANOS utc"}},
		{"offset_ns", col{"INT64", "REQUIRED", "INTEGER"}}, {"topic", col{"BYTE_ARRAY", "REQUIRED", "STRING"}},
		{"qos", col{"INT32", "REQUIRED", "INTEGER"}}, {"retain", col{"BOOLEAN", "REQUIRED", ""}},
		{"dup", col{"BOOLEAN", "REQUIRED", ""}}, {"from_store", col{"BOOLEAN", "REQUIRED", ""}},
		{"client_id", col{"BYTE_ARRAY", "REQUIRED", "STRING"}}, {"payload", col{"BYTE_ARRAY", "REQUIRED", ""}},
		{"payload_text", col{"BYTE_ARRAY", "OPTIONAL", "STRING"}}, {"decoded", col{"BYTE_ARRAY", "OPTIONAL", "JSON"}},
		{"packet_id", col{"INT32", "REQUIRED", "INTEGER"}}, {"properties", col{"BYTE_ARRAY", "OPTIONAL", "JSON"}},
	}
	if len(f.Schema) != len(wantCols) {
		t.Errorf("%d columns, want %d", len(f.Schema), len(wantCols))
	}
	for i, w := range wantCols {
		if i >= len(f.Schema) {
			break
		}
		c := f.Schema[i]
		logical := ""
		if c.Logical != nil {
			logical = c.Logical.Type
			if c.Logical.Unit != "" {
				logical += " " + c.Logical.Unit
			}
			if c.Logical.IsAdjustedToUTC {
				logical += " utc"
			}
		}
		if got := (col{c.Type, c.Repetition, logical}); c.Name != w.name || got != w.col {
			t.Errorf("column %d: %s %+v, want %s %+v", i, c.Name, got, w.name, w.col)
		}
	}
}

func checkParquetRow(t *testing.T, r map[string]any, m *storage.Message) {
	t.Helper()
	str := func(v int64) string { return strconv.FormatInt(v, 10) }
	wantText := any(nil)
	if utf8.Valid(m.Payload) {
		wantText = string(m.Payload)
	}
	wantProps := any(nil)
	if m.Props != nil {
		j, _ := json.Marshal(m.Props)
		json.Unmarshal(j, &wantProps)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"seq", r["seq"], str(m.Seq)}, {"session", r["session"], str(m.Session)}, {"ts_ns", r["ts_ns"], str(m.TimeNS)},
		{"time", r["time"], m.Time().Truncate(time.Millisecond).Format("2006-01-02T15:04:05.000Z")},
		{"offset_ns", r["offset_ns"], str(m.OffsetNS)}, {"topic", r["topic"], m.Topic},
		{"qos", r["qos"], float64(m.QoS)}, {"retain", r["retain"], m.Retain}, {"dup", r["dup"], m.Dup},
		{"from_store", r["from_store"], m.FromStore}, {"client_id", r["client_id"], m.ClientID},
		{"payload", r["payload"], base64.StdEncoding.EncodeToString(m.Payload)},
		{"payload_text", r["payload_text"], wantText}, {"decoded", r["decoded"], nil},
		{"packet_id", r["packet_id"], float64(m.PacketID)},
		{"properties", fmt.Sprint(r["properties"]), fmt.Sprint(wantProps)},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("seq %d %s: %.100v, want %.100v", m.Seq, c.name, c.got, c.want)
		}
	}
}

// TestExportParquetEmptyAndRefusals: an unselective export of a capture
// without messages is a valid Parquet file of zero rows; an existing output
// is never replaced (exit 4); a binary format needs -o; a selection that
// matches nothing in any part is an error that leaves no file.
func TestExportParquetEmptyAndRefusals(t *testing.T) {
	node := nodeWith(t, "hyparquet")
	parts, _ := exportParts(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.parquet")
	if code, _, stderr := runCLI(t, context.Background(), "export", "--format", "parquet", "-o", empty, parts[1]); code != exitOK {
		t.Fatalf("empty capture: exit %d\n%s", code, stderr)
	}
	if f := readHyparquet(t, node, empty); f.NumRows != 0 || len(f.Rows) != 0 || len(f.Schema) != 16 {
		t.Errorf("empty export: %d rows, %d columns", f.NumRows, len(f.Schema))
	}
	if fi, err := os.Stat(empty); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("export file mode %v (%v), want 0600 like a capture: it holds the same device data", fi.Mode().Perm(), err)
	}
	before, _ := os.ReadFile(empty)
	code, _, stderr := runCLI(t, context.Background(), "export", "--format", "parquet", "-o", empty, parts[0])
	after, _ := os.ReadFile(empty)
	if code != exitCapture || !strings.Contains(stderr, `output "`+empty+`": would overwrite an existing file`) || !bytes.Equal(before, after) {
		t.Errorf("existing output: exit %d, file changed %v\n%s", code, !bytes.Equal(before, after), stderr)
	}
	code, _, stderr = runCLI(t, context.Background(), "export", "--format", "parquet", parts[0])
	if code != exitUsage || !strings.Contains(stderr, "--format parquet writes a file: give -o FILE") {
		t.Errorf("no -o: exit %d\n%s", code, stderr)
	}
	none := filepath.Join(dir, "none.parquet")
	code, _, stderr = runCLI(t, context.Background(), "export", "--format", "parquet", "-o", none, "-t", "no/such", parts[0], parts[2])
	if _, err := os.Stat(none); code != exitError || !strings.Contains(stderr, "nothing selected") ||
		!strings.Contains(stderr, "-t/-x match none of the") || err == nil {
		t.Errorf("empty selection: exit %d, file %v\n%s", code, err, stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// mcapFile is what e2e/js/readmcap.mjs prints.
type mcapFile struct {
	Library    string
	Statistics *struct {
		MessageCount, ChunkCount json.Number
		ChannelCount             int
		ChannelMessageCounts     map[string]string
	}
	Schemas []struct {
		ID             int
		Name, Encoding string
		Data           []byte
	}
	Channels []struct {
		ID       int
		Topic    string
		Encoding string
		Schema   int
		Metadata map[string]string
	}
	Chunks            int
	Compression       []string
	DataCRCOK         bool `json:"data_crc_ok"`
	Indexed, Streamed []mcapMessage
}

type mcapMessage struct {
	Channel     int
	Sequence    uint32
	LogTime     string `json:"log_time"`
	PublishTime string `json:"publish_time"`
	Data        []byte
}

func readMCAP(t *testing.T, node, path string) mcapFile {
	t.Helper()
	out, err := exec.Command(node, filepath.Join("js", "readmcap.mjs"), path).Output()
	if err != nil {
		t.Fatalf("@mcap/core could not read %s: %v\n%s", path, err, stderrOf(err))
	}
	var f mcapFile
	if err := json.Unmarshal(out, &f); err != nil {
		t.Fatalf("readmcap.mjs: %v\n%.2000s", err, out)
	}
	return f
}

// TestExportMCAPReferenceReader exports three parts (one empty) into one
// MCAP file and reads it with @mcap/core, the reference reader, indexed
// (summary and chunk CRCs checked) and streamed: statistics, one json
// channel per topic and QoS/retain/publisher with those in its metadata,
// zstd chunks, the data section CRC, and every message's times, sequence
// and data (JSON objects as they are, other text as {"text"}, binary as
// {"base64"}).
func TestExportMCAPReferenceReader(t *testing.T) {
	node := nodeWith(t, "@mcap/core")
	parts, want := exportParts(t)
	out := filepath.Join(t.TempDir(), "all.mcap")
	code, _, stderr := runCLI(t, context.Background(), append([]string{"export", "--format", "mcap", "-o", out}, parts...)...)
	if code != exitOK {
		t.Fatalf("export: exit %d\n%s", code, stderr)
	}
	f := readMCAP(t, node, out)
	if !strings.HasPrefix(f.Library, "mqtape ") || f.Statistics == nil || f.Statistics.MessageCount != "8" ||
		!f.DataCRCOK || strings.Join(f.Compression, ",") != "zstd" || f.Chunks < 2 {
		t.Fatalf("file: library %q, statistics %+v, data CRC ok %v, %d chunks %v", f.Library, f.Statistics, f.DataCRCOK, f.Chunks, f.Compression)
	}
	type key struct{ topic, qos, retain, store, client string }
	channels := map[int]key{}
	for _, c := range f.Channels {
		if c.Encoding != "json" || c.Schema != 0 {
			t.Errorf("channel %d %q: encoding %q schema %d", c.ID, c.Topic, c.Encoding, c.Schema)
		}
		channels[c.ID] = key{c.Topic, c.Metadata["qos"], c.Metadata["retain"], c.Metadata["from_store"], c.Metadata["client_id"]}
	}
	// plant/line1/temp: QoS 1 from the retained store, QoS 1 from sensor-7,
	// QoS 0: three channels; every other topic one.
	if len(f.Channels) != 8 || f.Statistics.ChannelCount != 8 {
		t.Errorf("%d channels: %v", len(f.Channels), channels)
	}
	for name, got := range map[string][]mcapMessage{"indexed": f.Indexed, "streamed": f.Streamed} {
		if len(got) != len(want) {
			t.Fatalf("%s: %d messages, want %d", name, len(got), len(want))
		}
		for i, m := range want {
			g := got[i]
			ts := strconv.FormatInt(m.TimeNS, 10)
			k := key{m.Topic, strconv.Itoa(int(m.QoS)), strconv.FormatBool(m.Retain), strconv.FormatBool(m.FromStore), m.ClientID}
			if channels[g.Channel] != k || g.LogTime != ts || g.PublishTime != ts || g.Sequence != uint32(m.Seq) ||
				!bytes.Equal(g.Data, mcapData(m.Payload)) {
				t.Errorf("%s message %d: channel %v time %s/%s seq %d data %.80q; want %v %s seq %d %.80q", name, i,
					channels[g.Channel], g.LogTime, g.PublishTime, g.Sequence, g.Data, k, ts, m.Seq, mcapData(m.Payload))
			}
		}
	}

	empty := filepath.Join(t.TempDir(), "empty.mcap")
	if code, _, stderr := runCLI(t, context.Background(), "export", "--format", "mcap", "-o", empty, parts[1]); code != exitOK {
		t.Fatalf("empty capture: exit %d\n%s", code, stderr)
	}
	if e := readMCAP(t, node, empty); e.Statistics == nil || e.Statistics.MessageCount != "0" || len(e.Indexed) != 0 || !e.DataCRCOK {
		t.Errorf("empty export: %+v", e)
	}
}

// mcapData is what the MCAP export must carry for a payload.
func mcapData(p []byte) []byte {
	if t := bytes.TrimLeft(p, " \t\r\n"); len(t) > 0 && t[0] == '{' && json.Valid(p) {
		return p
	}
	var v map[string]string
	if utf8.Valid(p) {
		v = map[string]string{"text": string(p)}
	} else {
		v = map[string]string{"base64": base64.StdEncoding.EncodeToString(p)}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// readmeSQL returns the statements of the README's SQL blocks in its
// Parquet section.
func readmeSQL(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "#### Parquet")
	section, _, _ = strings.Cut(section, "\n#### ")
	var stmts []string
	for _, block := range strings.Split(section, "```sql\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		for _, s := range strings.Split(block, ";") {
			if s = strings.TrimSpace(s); s != "" {
				stmts = append(stmts, s)
			}
		}
	}
	return stmts
}

// TestReadmeDuckDBQueries runs the README's DuckDB queries over a
// directory of two Parquet exports (the two halves of a demo recording,
// as two recorders or two parts would give): DuckDB reads the files, every
// query runs, and they count what the capture holds.
func TestReadmeDuckDBQueries(t *testing.T) {
	node := nodeWith(t, "@duckdb/node-api")
	stmts := readmeSQL(t)
	if len(stmts) != 3 {
		t.Fatalf("the README's Parquet section has %d SQL statements, want 3", len(stmts))
	}
	dir := t.TempDir()
	capture := filepath.Join(dir, "demo.db")
	if code, _, stderr := runCLI(t, context.Background(), "demo", "--duration", "3s", "-o", capture, "--quiet"); code != exitOK {
		t.Fatalf("demo: exit %d\n%s", code, stderr)
	}
	os.Mkdir(filepath.Join(dir, "exports"), 0o755)
	for i, half := range [][]string{{"--to", "1500ms"}, {"--from", "1500ms"}} {
		out := filepath.Join(dir, "exports", fmt.Sprintf("part%d.parquet", i+1))
		if code, _, stderr := runCLI(t, context.Background(), append([]string{"export", "--format", "parquet", "-o", out, capture}, half...)...); code != exitOK {
			t.Fatalf("export %v: exit %d\n%s", half, code, stderr)
		}
	}
	msgs, _, _ := capturetest.Read(t, capture)
	cmd := exec.Command(node, filepath.Join("js", "duckdb.mjs"), dir)
	in, _ := json.Marshal(stmts)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("duckdb: %v\n%s", err, stderrOf(err))
	}
	var results [][][]any
	if err := json.Unmarshal(out, &results); err != nil || len(results) != 3 {
		t.Fatalf("duckdb.mjs: %v\n%.2000s", err, out)
	}
	perMinute, stats := results[0], results[1]
	total := 0
	for _, r := range perMinute {
		n, _ := strconv.Atoi(fmt.Sprint(r[2]))
		total += n
	}
	telemetry := 0
	for _, m := range msgs {
		if strings.HasPrefix(m.Topic, "plant/") && strings.HasSuffix(m.Topic, "/telemetry") && json.Valid(m.Payload) {
			telemetry++
		}
	}
	statsN := 0
	for _, r := range stats {
		n, _ := strconv.Atoi(fmt.Sprint(r[1]))
		statsN += n
		if lo, hi := fmt.Sprint(r[2]), fmt.Sprint(r[4]); lo == "<nil>" || hi == "<nil>" {
			t.Errorf("%v: no pressure_bar statistics", r)
		}
	}
	if total != len(msgs) || telemetry == 0 || statsN != telemetry {
		t.Errorf("per minute: %d messages of %d; statistics over %d of %d telemetry messages", total, len(msgs), statsN, telemetry)
	}
}

// TestExportInterruptedLeavesNothing: Ctrl-C while a Parquet or MCAP file
// is being written exits 130 and leaves neither the file nor its
// temporary.
func TestExportInterruptedLeavesNothing(t *testing.T) {
	in := capturetest.WriteBig(t, 100_000)
	for _, format := range []string{"parquet", "mcap"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out."+format)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, []string{"export", "--format", format, "-o", out, in}, io.Discard, io.Discard)
			}()
			started := testbroker.Eventually(10*time.Second, func() bool {
				tmp, _ := filepath.Glob(filepath.Join(dir, ".out."+format+".tmp-*"))
				return len(tmp) > 0
			})
			cancel()
			code := <-done
			if !started {
				t.Fatalf("no temporary file appeared; exit %d", code)
			}
			left, _ := os.ReadDir(dir)
			if code != exitInterrupted || len(left) != 0 {
				t.Errorf("exit %d, left %v; want 130 and nothing", code, left)
			}
		})
	}
}
