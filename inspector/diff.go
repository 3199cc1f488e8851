package inspector

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// diffPayloads describes how cur differs from prev: field by field when
// both are JSON, line by line when both are text, by bytes otherwise.
func diffPayloads(prev, cur []byte) string {
	if bytes.Equal(prev, cur) {
		return "  (identical payload)\n"
	}
	pk, ck := kindOf(prev), kindOf(cur)
	switch {
	case pk == kindJSON && ck == kindJSON:
		return diffJSON(prev, cur)
	case (pk == kindText || pk == kindEmpty || pk == kindJSON) && (ck == kindText || ck == kindEmpty || ck == kindJSON):
		return diffLines(string(prev), string(cur))
	}
	return diffBytes(prev, cur)
}

// flatten maps every leaf of a JSON document to its path (.a.b[2]) and
// compact JSON value; paths come in sorted key order, array elements in
// order. Numbers keep their text (json.Number).
func flatten(doc []byte) (paths []string, values map[string]string, err error) {
	values = map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, nil, err
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if len(x) == 0 {
				paths = append(paths, path)
				values[path] = "{}"
			}
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(path+"."+jsonKey(k), x[k])
			}
		case []any:
			if len(x) == 0 {
				paths = append(paths, path)
				values[path] = "[]"
			}
			for i, e := range x {
				walk(path+"["+strconv.Itoa(i)+"]", e)
			}
		default:
			b, _ := json.Marshal(x)
			if path == "" {
				path = "."
			}
			paths = append(paths, path)
			values[path] = string(b)
		}
	}
	walk("", v)
	return paths, values, nil
}

// jsonKey writes a key bare when it is a simple identifier, else quoted.
func jsonKey(k string) string {
	for i, r := range k {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return strconv.Quote(k)
		}
	}
	if k == "" {
		return `""`
	}
	return k
}

const maxDiffLines = 400

func diffJSON(prev, cur []byte) string {
	pp, pv, err1 := flatten(prev)
	cp, cv, err2 := flatten(cur)
	if err1 != nil || err2 != nil {
		return diffLines(string(prev), string(cur))
	}
	var b strings.Builder
	n := 0
	line := func(format string, a ...any) {
		if n < maxDiffLines {
			fmt.Fprintf(&b, format, a...)
		}
		n++
	}
	for _, p := range cp {
		old, had := pv[p]
		switch {
		case !had:
			line("+ %s: %s\n", p, cv[p])
		case old != cv[p]:
			line("~ %s: %s → %s%s\n", p, old, cv[p], numericDelta(old, cv[p]))
		}
	}
	for _, p := range pp {
		if _, ok := cv[p]; !ok {
			line("- %s: %s\n", p, pv[p])
		}
	}
	if n == 0 {
		return "  (same fields and values; only formatting differs)\n"
	}
	if n > maxDiffLines {
		fmt.Fprintf(&b, "… %d more changes\n", n-maxDiffLines)
	}
	return b.String()
}

// numericDelta annotates a change of a number: " (+0.5)".
func numericDelta(a, b string) string {
	x, err1 := strconv.ParseFloat(a, 64)
	y, err2 := strconv.ParseFloat(b, 64)
	if err1 != nil || err2 != nil {
		return ""
	}
	d := strconv.FormatFloat(y-x, 'g', 6, 64)
	if y > x {
		d = "+" + d
	}
	return " (" + d + ")"
}

// diffLines is a line diff (longest common subsequence) for short texts.
func diffLines(prev, cur string) string {
	a, b := strings.Split(prev, "\n"), strings.Split(cur, "\n")
	if len(a)*len(b) > 4_000_000 {
		return fmt.Sprintf("  texts differ (%d and %d lines: too long for a line diff)\n", len(a), len(b))
	}
	// lcs[i][j] = LCS length of a[i:], b[j:].
	lcs := make([][]int32, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int32, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	n := 0
	emit := func(prefix, s string) {
		if n < maxDiffLines {
			out.WriteString(prefix + s + "\n")
		}
		n++
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			emit("  ", a[i])
			i, j = i+1, j+1
		case i < len(a) && (j == len(b) || lcs[i+1][j] >= lcs[i][j+1]):
			emit("- ", a[i])
			i++
		default:
			emit("+ ", b[j])
			j++
		}
	}
	if n > maxDiffLines {
		fmt.Fprintf(&out, "… %d more lines\n", n-maxDiffLines)
	}
	return out.String()
}

// diffBytes summarises a binary difference and shows both around the first
// differing byte.
func diffBytes(prev, cur []byte) string {
	at := 0
	for at < len(prev) && at < len(cur) && prev[at] == cur[at] {
		at++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  binary: %d → %d bytes, first difference at offset %d (0x%x)\n", len(prev), len(cur), at, at)
	start := at &^ 15
	show := func(label string, p []byte) {
		end := min(len(p), start+32)
		if start >= end {
			fmt.Fprintf(&b, "%s (ends before offset %d)\n", label, start)
			return
		}
		fmt.Fprintf(&b, "%s\n", label)
		for off := start; off < end; off += 16 {
			fmt.Fprintf(&b, "  %08x  %s\n", off, spacedHex(p[off:min(end, off+16)]))
		}
	}
	show("- previous", prev)
	show("+ this", cur)
	return b.String()
}
