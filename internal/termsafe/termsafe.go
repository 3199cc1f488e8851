// Package termsafe keeps data from capture files (topics, payloads, client
// ids, file names, error text) from controlling the terminal it is printed
// on. Topics and payloads are whatever devices sent, and captures travel
// between people: an ESC ] 0;… BEL in a topic would retitle the terminal,
// OSC 52 would write the clipboard, ESC [2J clear the screen, U+009B start
// a control sequence on terminals that honour C1, and U+202E reorder what
// is shown.
//
// The one definition of "unsafe" is Unsafe: every C0 control, DEL, every C1
// control, the bidirectional formatting characters and the line and
// paragraph separators. Human output shows them visibly: C0, DEL and bytes
// that are not UTF-8 as \xNN (\n, \r, \t as themselves escaped), the others
// as ⟨U+XXXX⟩. JSON output escapes them as \uXXXX, which any JSON parser
// reads back as the same string. Stdlib only.
package termsafe

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Unsafe reports whether r must not reach a terminal as itself.
func Unsafe(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, // arabic letter mark, LRM, RLM
		r >= 0x202a && r <= 0x202e, // LRE, RLE, PDF, LRO, RLO
		r >= 0x2066 && r <= 0x2069, // LRI, RLI, FSI, PDI
		r == 0x2028, r == 0x2029:   // line and paragraph separators
		return true
	}
	return false
}

// needs reports whether s holds anything String would change.
func needs(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return true
		}
		if c >= 0x80 {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 || Unsafe(r) {
				return true
			}
			i += n - 1
		}
	}
	return false
}

// String returns s with every unsafe character and every byte that is not
// UTF-8 shown visibly, on one line: "a\x1b[2Jb" as `a\x1b[2Jb`, "\n" as
// `\n`, U+202E as ⟨U+202E⟩. s is returned as is when nothing needs it.
func String(s string) string {
	if !needs(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	appendSafe(&b, s, false)
	return b.String()
}

// appendSafe writes s to b with unsafe characters shown; keepNewlines
// passes '\n' and '\t' through (for text whose lines are mqtape's own).
func appendSafe(b *strings.Builder, s string, keepNewlines bool) {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			i++
			continue
		}
		r, n := rune(c), 1
		if c >= 0x80 {
			r, n = utf8.DecodeRuneInString(s[i:])
		}
		bad := r == utf8.RuneError && n == 1
		if !bad && !Unsafe(r) || keepNewlines && (c == '\n' || c == '\t') {
			i += n
			continue
		}
		b.WriteString(s[start:i])
		writeVisible(b, r, c, bad)
		i += n
		start = i
	}
	b.WriteString(s[start:])
}

func writeVisible(b *strings.Builder, r rune, c byte, bad bool) {
	switch {
	case bad:
		fmt.Fprintf(b, `\x%02x`, c)
	case r == '\n':
		b.WriteString(`\n`)
	case r == '\r':
		b.WriteString(`\r`)
	case r == '\t':
		b.WriteString(`\t`)
	case r < 0x80:
		fmt.Fprintf(b, `\x%02x`, r)
	default:
		fmt.Fprintf(b, "⟨U+%04X⟩", r)
	}
}

// Cell is String cut to at most width characters for a table column (with
// … as its last character when cut): a 10 MB topic costs a table no more
// than a short one. Only as much of s as the cell shows is read. The full
// text belongs in --json output. width < 1 means no limit.
func Cell(s string, width int) string {
	if width < 1 {
		return String(s)
	}
	// A shown character comes from at most 4 bytes of s; escapes only
	// make it longer, so this prefix holds everything the cell can show.
	prefix, cut := s, false
	if len(prefix) > 4*width+4 {
		prefix, cut = prefix[:4*width+4], true
	}
	out := String(prefix)
	if !cut && utf8.RuneCountInString(out) <= width {
		return out
	}
	n := 0
	for i := range out {
		if n == width-1 {
			return out[:i] + "…"
		}
		n++
	}
	return out // the prefix was cut inside its last rune only
}
