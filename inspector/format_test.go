package inspector

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestPreviewText(t *testing.T) {
	cases := []struct {
		p    []byte
		size int
		want string
	}{
		{nil, 0, "∅"},
		{[]byte("online"), 6, "online"},
		{[]byte("a\n\tb  c\r\n"), 9, "a b c"},
		{[]byte("héllo wö"), 20, "héllo wö…"},
		{[]byte("h\xc3"), 5, "h…"}, // cut inside a rune: still text
		{[]byte("\x00\x01"), 2, "⟨bin⟩ 00 01"},
		{[]byte("\x1b[31m"), 5, "⟨bin⟩ 1b 5b 33 31 6d"},
		{bytes.Repeat([]byte{0xff}, 30), 30, "⟨bin⟩ " + strings.TrimSpace(strings.Repeat("ff ", 24)) + " …"},
	}
	for _, tc := range cases {
		if got := previewText(tc.p, tc.size); got != tc.want {
			t.Errorf("previewText(%q, %d) = %q, want %q", tc.p, tc.size, got, tc.want)
		}
	}
}

func TestRenderPayload(t *testing.T) {
	cases := []struct {
		p        string
		mode     viewMode
		want     string
		wantMode viewMode
	}{
		{`{"a":1,"b":[true,null]}`, viewAuto, "{\n  \"a\": 1,\n  \"b\": [\n    true,\n    null\n  ]\n}", viewJSON},
		{`42`, viewAuto, "42", viewJSON},
		{"plain text", viewAuto, "plain text", viewText},
		{"plain text", viewJSON, "not JSON", viewJSON},
		{"\x00\xffab", viewAuto, "00000000  00 ff 61 62", viewHex},
		{"\xffab", viewText, "\uFFFDab\n(not valid UTF-8", viewText},
		{"", viewHex, "(empty payload)", viewHex},
	}
	for _, tc := range cases {
		got, mode := renderPayload([]byte(tc.p), tc.mode)
		if !strings.HasPrefix(got, tc.want) || mode != tc.wantMode {
			t.Errorf("renderPayload(%q, %v) = %q (%v), want prefix %q (%v)", tc.p, tc.mode, got, mode, tc.want, tc.wantMode)
		}
	}
	// Large payloads are cut, with a note.
	big := bytes.Repeat([]byte("x"), maxTextShown+10)
	if got, _ := renderPayload(big, viewText); len(got) > maxTextShown+200 || !strings.Contains(got, "truncated") {
		t.Errorf("big text: %d bytes shown", len(got))
	}
	if got, _ := renderPayload(big, viewHex); !strings.Contains(got, "more (w writes") {
		t.Error("big hex dump without a note")
	}
}

func TestFormatHelpers(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1.0K", 1536: "1.5K", 1 << 20: "1.0M", 3 << 30: "3.0G"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %s, want %s", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{0: "+00:00.000", 1500 * time.Millisecond: "+00:01.500",
		90 * time.Second: "+01:30.000", 3*time.Hour + 2*time.Minute + 1*time.Second: "+3:02:01.000", -time.Second: "-00:01.000"} {
		if got := fmtOffset(d); got != want {
			t.Errorf("fmtOffset(%s) = %s, want %s", d, got, want)
		}
	}
	if got := sanitize("a\x01b\x7f"); got != "a�b�" {
		t.Errorf("sanitize = %q", got)
	}
}

func TestDiffPayloads(t *testing.T) {
	cases := []struct {
		prev, cur string
		want      string
	}{
		{`{"a":1}`, `{"a":1}`, "  (identical payload)\n"},
		{`{"a":1,"b":2}`, `{"b":2,"a":1}`, "  (same fields and values; only formatting differs)\n"},
		{`{"t":21.5,"s":"on","gone":1,"arr":[1,2]}`, `{"t":22,"s":"off","new":{"x":true},"arr":[1,3,4]}`,
			"~ .arr[1]: 2 → 3 (+1)\n+ .arr[2]: 4\n+ .new.x: true\n~ .s: \"on\" → \"off\"\n~ .t: 21.5 → 22 (+0.5)\n- .gone: 1\n"},
		{`{"a b":1}`, `{"a b":2}`, "~ .\"a b\": 1 → 2 (+1)\n"},
		{"line1\nline2\nline3", "line1\nline2b\nline3", "  line1\n- line2\n+ line2b\n  line3\n"},
		{"online", "offline", "- online\n+ offline\n"},
		{"\x00\x01\x02", "\x00\x01\x03\x04", "  binary: 3 → 4 bytes, first difference at offset 2 (0x2)\n- previous\n  00000000  00 01 02\n+ this\n  00000000  00 01 03 04\n"},
	}
	for _, tc := range cases {
		if got := diffPayloads([]byte(tc.prev), []byte(tc.cur)); got != tc.want {
			t.Errorf("diff %q → %q:\n%s\nwant:\n%s", tc.prev, tc.cur, got, tc.want)
		}
	}
}

func TestCharts(t *testing.T) {
	got := blockChart([]float64{0, 1, 2, 4, 3}, 2)
	want := []string{"   █▄", " ▄███"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("blockChart = %q, want %q", got, want)
	}
	if got := blockChart([]float64{0, 0}, 1); got[0] != "  " {
		t.Errorf("all-zero chart = %q", got)
	}
	nan := func() float64 { var z float64; return z / z }()
	lo := []float64{0, 1, 2, 3, nan, 3}
	hi := []float64{0, 1, 2, 3, nan, 3}
	b := brailleChart(lo, hi, 0, 3, 1)
	if len(b) != 1 || len([]rune(b[0])) != 3 {
		t.Fatalf("brailleChart = %q", b)
	}
	// Column 0 at the bottom dot row, column 3 at the top; the gap stays empty.
	for i, r := range []rune(b[0]) {
		if r < 0x2800 || r > 0x28ff {
			t.Errorf("cell %d = %q, not braille", i, r)
		}
	}
	if r := []rune(b[0]); r[0]&0x40 == 0 || r[1]&0x08 == 0 {
		t.Errorf("dots: %q", b[0])
	}
	if got := brailleChart(nil, nil, 0, 1, 3); got != nil {
		t.Errorf("empty braille chart = %q", got)
	}
}

// FuzzPayloadViews: every view of any payload, and the diff of any two,
// renders without panicking.
func FuzzPayloadViews(f *testing.F) {
	for _, s := range [][2]string{{`{"a":1}`, `{"a":[1,{"b":null}]}`}, {"x\ny", "x\nz\n"}, {"\x00\xff", "\xe2\x82"}, {"", "[]"}} {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		for mode := viewAuto; mode < viewCount; mode++ {
			renderPayload(a, mode)
		}
		previewText(a[:len(a)/2], len(a))
		diffPayloads(a, b)
		numericFields(a)
	})
}

// TestRetainMark: the R column marks messages from the retained store "R"
// and messages published retained (the flag a serve or MQTT 5 capture
// sees) "r"; it showed nothing for the latter.
func TestRetainMark(t *testing.T) {
	for _, c := range []struct {
		retain, fromStore bool
		want              string
	}{{false, false, " "}, {true, false, "r"}, {true, true, "R"}, {false, true, "R"}} {
		if got := retainMark(c.retain, c.fromStore); got != c.want {
			t.Errorf("retainMark(%v, %v) = %q, want %q", c.retain, c.fromStore, got, c.want)
		}
	}
}
