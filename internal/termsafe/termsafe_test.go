package termsafe

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// hostile are the sequences of issue 15: a title change, a screen clear,
// an OSC 52 clipboard write, a C1 CSI and a right-to-left override.
var hostile = []struct{ in, want string }{
	{"a\x1b]0;pwned\x07b", `a\x1b]0;pwned\x07b`},
	{"\x1b[2J\x1b[31m", `\x1b[2J\x1b[31m`},
	{"\x1b]52;c;cHduZWQ=\x07", `\x1b]52;c;cHduZWQ=\x07`},
	{"x\u009b2Jy", "x⟨U+009B⟩2Jy"},
	{"evil\u202etxt.exe", "evil⟨U+202E⟩txt.exe"},
	{"line1\nline2\r\t", `line1\nline2\r\t`},
	{"del\x7f", `del\x7f`},
	{"bad \xff\xfe utf8", `bad \xff\xfe utf8`},
	{"\u2066iso\u2069 \u200f \u2028", "⟨U+2066⟩iso⟨U+2069⟩ ⟨U+200F⟩ ⟨U+2028⟩"},
	{"plain/topic/ünïcödé 温度 🌡", "plain/topic/ünïcödé 温度 🌡"},
	{"", ""},
}

// hasUnsafe reports the first unsafe character or invalid byte in s.
func hasUnsafe(s string, keepNewlines bool) (rune, bool) {
	for i, r := range s {
		if r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD") {
			return r, true
		}
		if keepNewlines && (r == '\n' || r == '\t') {
			continue
		}
		if Unsafe(r) {
			return r, true
		}
	}
	return 0, false
}

func TestString(t *testing.T) {
	for _, c := range hostile {
		if got := String(c.in); got != c.want {
			t.Errorf("String(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCell(t *testing.T) {
	for _, c := range []struct {
		in    string
		width int
		want  string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"eleven char", 10, "eleven ch…"},
		{"\x1b[2Jabc", 6, `\x1b[…`},
		{"温度温度温度", 4, "温度温…"},
		{"anything", 0, "anything"},
	} {
		if got := Cell(c.in, c.width); got != c.want {
			t.Errorf("Cell(%q, %d) = %q, want %q", c.in, c.width, got, c.want)
		}
	}
	// A 10 MB topic costs what its cell shows.
	big := strings.Repeat("a/\x1b", 10<<20/3)
	start := time.Now()
	got := Cell(big, 60)
	if n := utf8.RuneCountInString(got); n != 60 || !strings.HasSuffix(got, "…") {
		t.Errorf("Cell of 10 MB: %d characters %q", n, got)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("Cell of 10 MB took %v", d)
	}
}

func TestWriterSplitWrites(t *testing.T) {
	in := "topic \x1b]0;pwned\x07 \u202e é 温 🌡\n\u009b\tend\xff"
	want := `topic \x1b]0;pwned\x07 ⟨U+202E⟩ é 温 🌡` + "\n⟨U+009B⟩\tend" + `\xff`
	// Every way of cutting the text in two writes gives the same output.
	for cut := 0; cut <= len(in); cut++ {
		var out bytes.Buffer
		w := NewWriter(&out)
		if n, err := w.Write([]byte(in[:cut])); err != nil || n != cut {
			t.Fatalf("Write = %d, %v", n, err)
		}
		w.Write([]byte(in[cut:]))
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Fatalf("cut at %d: %q, want %q", cut, out.String(), want)
		}
	}
}

func TestJSONWriter(t *testing.T) {
	type rec struct {
		Topic   string `json:"topic"`
		Payload string `json:"payload"`
	}
	for _, c := range hostile {
		v := rec{Topic: c.in, Payload: "p" + c.in + "\x7f\u0085"}
		var out bytes.Buffer
		w := NewJSONWriter(&out)
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		if r, bad := hasUnsafe(out.String(), true); bad {
			t.Errorf("JSON of %q holds %U: %s", c.in, r, out.String())
		}
		var back rec
		if err := json.Unmarshal(out.Bytes(), &back); err != nil {
			t.Fatalf("JSON of %q does not parse: %v", c.in, err)
		}
		// The escaping changes nothing encoding/json itself would not
		// (it turns bytes that are not UTF-8 into U+FFFD).
		plain, _ := json.Marshal(v)
		var want rec
		json.Unmarshal(plain, &want)
		if back != want {
			t.Errorf("%q came back as %q, without escaping as %q", v, back, want)
		}
	}
}

// FuzzString: whatever the input, String and Writer output holds no unsafe
// character and no byte that is not UTF-8, String is one line, and safe
// text comes through unchanged.
func FuzzString(f *testing.F) {
	for _, c := range hostile {
		f.Add(c.in, 3)
	}
	f.Fuzz(func(t *testing.T, s string, cut int) {
		got := String(s)
		if r, bad := hasUnsafe(got, false); bad {
			t.Fatalf("String(%q) = %q holds %U", s, got, r)
		}
		if _, bad := hasUnsafe(s, false); !bad && got != s {
			t.Fatalf("String(%q) changed safe text to %q", s, got)
		}
		var out bytes.Buffer
		w := NewWriter(&out)
		cut = min(max(cut, 0), len(s))
		w.Write([]byte(s[:cut]))
		w.Write([]byte(s[cut:]))
		w.Flush()
		if r, bad := hasUnsafe(out.String(), true); bad {
			t.Fatalf("Writer(%q) = %q holds %U", s, out.String(), r)
		}
		if c := Cell(s, 1+cut%40); utf8.RuneCountInString(c) > 1+cut%40 {
			t.Fatalf("Cell(%q, %d) = %q is too wide", s, 1+cut%40, c)
		}
	})
}
