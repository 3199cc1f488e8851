package diff

// opKind is one step of an alignment.
type opKind byte

const (
	opEqual  opKind = iota // a[i] and b[j] are the same message
	opChange               // a[i] and b[j] are counterparts that differ
	opDelete               // a[i] has no counterpart in b
	opInsert               // b[j] has no counterpart in a
)

type op struct {
	kind opKind
	i, j int // indexes into a and b (-1 when not applicable)
}

// maxEdits bounds the Myers search; beyond it the sequences are paired by
// position, which is what a reader expects of very different sequences.
const maxEdits = 1000

// align pairs two sequences of message hashes in order: a shortest edit
// script (Myers' O((N+M)·D) algorithm after trimming the common prefix and
// suffix), where adjacent deletions and insertions are paired into changes.
// Sequences that differ by more than maxEdits are paired by position.
func align(a, b []uint64) []op {
	var ops []op
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		ops = append(ops, op{opEqual, pre, pre})
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	mid := middle(a[pre:len(a)-suf], b[pre:len(b)-suf], pre)
	ops = append(ops, pairChanges(mid)...)
	for k := suf; k > 0; k-- {
		ops = append(ops, op{opEqual, len(a) - k, len(b) - k})
	}
	return ops
}

// middle aligns a and b (offset by base in the full sequences) with equal,
// delete and insert steps.
func middle(a, b []uint64, base int) []op {
	n, m := len(a), len(b)
	if n == 0 && m == 0 {
		return nil
	}
	if path := myers(a, b); path != nil {
		for k := range path {
			if path[k].i >= 0 {
				path[k].i += base
			}
			if path[k].j >= 0 {
				path[k].j += base
			}
		}
		return path
	}
	var ops []op
	for k := range max(n, m) {
		switch {
		case k < n && k < m:
			kind := opChange
			if a[k] == b[k] {
				kind = opEqual
			}
			ops = append(ops, op{kind, base + k, base + k})
		case k < n:
			ops = append(ops, op{opDelete, base + k, -1})
		default:
			ops = append(ops, op{opInsert, -1, base + k})
		}
	}
	return ops
}

// myers returns a shortest edit script, or nil when it needs more than
// maxEdits edits.
func myers(a, b []uint64) []op {
	n, m := len(a), len(b)
	limit := min(n+m, maxEdits)
	off := limit + 1
	v := make([]int, 2*limit+3)
	var trace [][]int
	for d := 0; d <= limit; d++ {
		// Keep the part of v that step d reads: diagonals -d-1 … d+1.
		trace = append(trace, append([]int(nil), v[off-d-1:off+d+2]...))
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1]
			} else {
				x = v[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x, y = x+1, y+1
			}
			v[off+k] = x
			if x >= n && y >= m {
				return backtrack(trace, d, n, m)
			}
		}
	}
	return nil
}

func backtrack(trace [][]int, d, n, m int) []op {
	var rev []op
	x, y := n, m
	for ; d > 0; d-- {
		w := trace[d] // w[i] is diagonal i-d-1
		at := func(k int) int { return w[k+d+1] }
		k := x - y
		var prevK int
		if k == -d || (k != d && at(k-1) < at(k+1)) {
			prevK = k + 1
		} else {
			prevK = k - 1
		}
		px := at(prevK)
		py := px - prevK
		for x > px && y > py {
			x, y = x-1, y-1
			rev = append(rev, op{opEqual, x, y})
		}
		if x == px {
			y--
			rev = append(rev, op{opInsert, -1, y})
		} else {
			x--
			rev = append(rev, op{opDelete, x, -1})
		}
	}
	for x > 0 && y > 0 {
		x, y = x-1, y-1
		rev = append(rev, op{opEqual, x, y})
	}
	out := make([]op, len(rev))
	for i, o := range rev {
		out[len(rev)-1-i] = o
	}
	return out
}

// pairChanges turns each run of deletions and insertions between two equal
// steps into changes (paired in order) plus the unpaired rest.
func pairChanges(ops []op) []op {
	var out, dels, ins []op
	flush := func() {
		k := min(len(dels), len(ins))
		for x := range k {
			out = append(out, op{opChange, dels[x].i, ins[x].j})
		}
		out = append(out, dels[k:]...)
		out = append(out, ins[k:]...)
		dels, ins = dels[:0], ins[:0]
	}
	for _, o := range ops {
		switch o.kind {
		case opDelete:
			dels = append(dels, o)
		case opInsert:
			ins = append(ins, o)
		default:
			flush()
			out = append(out, o)
		}
	}
	flush()
	return out
}
