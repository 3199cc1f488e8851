package termsafe

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"
)

// Writer passes text to w with every unsafe character shown as String
// shows it, except '\n' and '\t': for human output whose lines and columns
// are mqtape's own and whose data may hold anything. A character split
// across two writes is held until the next write; Flush writes out what is
// held (as \xNN escapes: it was not UTF-8). Goroutines may share one.
type Writer struct {
	mu      sync.Mutex
	w       io.Writer
	json    bool
	pending []byte // the start of a character the next write completes
}

// NewWriter returns a Writer for human text to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// NewJSONWriter returns a Writer for the output of encoding/json to w: it
// escapes DEL, the C1 controls, the bidirectional formatting characters
// and the line separators as \uXXXX (encoding/json already escapes the C0
// controls), so the text holds none of them and parses to the same value.
// Everything else, including bytes that are not UTF-8, passes as is.
func NewJSONWriter(w io.Writer) *Writer { return &Writer{w: w, json: true} }

// Write writes p (all of it, as far as the caller is concerned: it returns
// len(p) when the escaped text was written).
func (tw *Writer) Write(p []byte) (int, error) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	n := len(p)
	if len(tw.pending) > 0 {
		p = append(tw.pending, p...)
		tw.pending = nil
	}
	// Hold back an incomplete character at the end.
	if tail := incompleteTail(p); tail > 0 {
		tw.pending = append([]byte(nil), p[len(p)-tail:]...)
		p = p[:len(p)-tail]
	}
	var err error
	switch {
	case clean(p, tw.json):
		_, err = tw.w.Write(p) // no copy of a large payload
	case tw.json:
		_, err = io.WriteString(tw.w, escapeJSON(string(p)))
	default:
		var b strings.Builder
		b.Grow(len(p) + 16)
		appendSafe(&b, string(p), true)
		_, err = io.WriteString(tw.w, b.String())
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}

// clean reports whether p can be written as it is: for JSON, when it holds
// none of the characters escapeJSON escapes; for text, when it holds
// nothing unsafe but '\n' and '\t', and only UTF-8.
func clean(p []byte, json bool) bool {
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c < 0x20:
			if !json && c != '\n' && c != '\t' {
				return false
			}
			i++
		case c < 0x7f:
			i++
		default:
			r, n := utf8.DecodeRune(p[i:])
			if r == 0x7f || Unsafe(r) || !json && r == utf8.RuneError && n == 1 {
				return false
			}
			i += n
		}
	}
	return true
}

// Flush writes what a last write left incomplete.
func (tw *Writer) Flush() error {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if len(tw.pending) == 0 {
		return nil
	}
	p := tw.pending
	tw.pending = nil
	if tw.json {
		_, err := tw.w.Write(p)
		return err
	}
	_, err := io.WriteString(tw.w, String(string(p)))
	return err
}

// incompleteTail is how many bytes at the end of p start a UTF-8 character
// that p does not complete (0 when p ends on a boundary or in bytes that
// can never become UTF-8).
func incompleteTail(p []byte) int {
	for k := 1; k <= 3 && k <= len(p); k++ {
		c := p[len(p)-k]
		if c < 0x80 {
			return 0
		}
		if c >= 0xc0 { // a leading byte
			if !utf8.FullRune(p[len(p)-k:]) {
				return k
			}
			return 0
		}
	}
	return 0
}

// escapeJSON escapes the unsafe characters encoding/json leaves as they are.
func escapeJSON(s string) string {
	var b strings.Builder
	start := 0
	for i := 0; i < len(s); {
		if s[i] < 0x7f {
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if !(r == 0x7f || r != utf8.RuneError && Unsafe(r)) {
			i += n
			continue
		}
		if start == 0 {
			b.Grow(len(s) + 16)
		}
		b.WriteString(s[start:i])
		fmt.Fprintf(&b, `\u%04x`, r)
		i += n
		start = i
	}
	if start == 0 {
		return s
	}
	b.WriteString(s[start:])
	return b.String()
}
