package diff

// opKind is one step of an alignment.
type opKind byte

const (
	opEqual  opKind = iota // a[i] and b[j] are the same message
	opChange               // a[i] and b[j] are counterparts that differ
	opDelete               // a[i] has no counterpart in b
	opInsert               // b[j] has no counterpart in a
	opMove                 // a[i] and b[j] are the same message at different places in the order
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
// suffix). A deleted and an inserted message with the same hash are one
// message that moved (opMove, paired in order of appearance); the other
// adjacent deletions and insertions are paired into changes. Sequences that
// differ by more than maxEdits are matched by content instead (see
// matchUnordered).
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
	ops = append(ops, pairChanges(pairMoves(mid, a, b))...)
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
	path := myers(a, b)
	if path == nil {
		path = matchUnordered(a, b)
	}
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

// pairMoves turns each deletion whose message is also inserted elsewhere
// (the same hash) into a move, pairing the k-th such deletion of a hash
// with the k-th such insertion. A move is listed where the message was in a.
func pairMoves(ops []op, a, b []uint64) []op {
	ins := map[uint64][]int{} // hash → indexes into ops of unpaired insertions
	for k, o := range ops {
		if o.kind == opInsert {
			ins[b[o.j]] = append(ins[b[o.j]], k)
		}
	}
	if len(ins) == 0 {
		return ops
	}
	moved := make([]bool, len(ops))
	for k, o := range ops {
		if o.kind != opDelete {
			continue
		}
		if q := ins[a[o.i]]; len(q) > 0 {
			ops[k] = op{opMove, o.i, ops[q[0]].j}
			moved[q[0]] = true
			ins[a[o.i]] = q[1:]
		}
	}
	out := ops[:0]
	for k, o := range ops {
		if !moved[k] {
			out = append(out, o)
		}
	}
	return out
}

// matchUnordered aligns sequences too different for myers: the k-th
// occurrence of a hash in a is paired with its k-th occurrence in b; the
// longest run of pairs in the same order on both sides are equal steps, the
// other pairs moves, the rest deletions and insertions. O((N+M) log N).
func matchUnordered(a, b []uint64) []op {
	occ := map[uint64][]int{}
	for j, h := range b {
		occ[h] = append(occ[h], j)
	}
	pairOf := make([]int, len(a)) // a index → b index, -1: none
	usedB := make([]bool, len(b))
	var pi, pj []int // the pairs, in a order
	for i, h := range a {
		pairOf[i] = -1
		if q := occ[h]; len(q) > 0 {
			pairOf[i], occ[h] = q[0], q[1:]
			usedB[q[0]] = true
			pi, pj = append(pi, i), append(pj, q[0])
		}
	}
	inOrder := make([]bool, len(a))
	for _, k := range longestIncreasing(pj) {
		inOrder[pi[k]] = true
	}
	var ops []op
	j := 0
	for i := range a {
		if !inOrder[i] {
			if pairOf[i] >= 0 {
				ops = append(ops, op{opMove, i, pairOf[i]})
			} else {
				ops = append(ops, op{opDelete, i, -1})
			}
			continue
		}
		for ; j < pairOf[i]; j++ {
			if !usedB[j] {
				ops = append(ops, op{opInsert, -1, j})
			}
		}
		ops = append(ops, op{opEqual, i, pairOf[i]})
		j++
	}
	for ; j < len(b); j++ {
		if !usedB[j] {
			ops = append(ops, op{opInsert, -1, j})
		}
	}
	return ops
}

// longestIncreasing returns the indexes of a longest strictly increasing
// subsequence of v (patience sorting).
func longestIncreasing(v []int) []int {
	var tails []int // tails[l]: index into v ending the best run of length l+1
	prev := make([]int, len(v))
	for k, x := range v {
		lo, hi := 0, len(tails)
		for lo < hi {
			mid := (lo + hi) / 2
			if v[tails[mid]] < x {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		prev[k] = -1
		if lo > 0 {
			prev[k] = tails[lo-1]
		}
		if lo == len(tails) {
			tails = append(tails, k)
		} else {
			tails[lo] = k
		}
	}
	out := make([]int, len(tails))
	if len(tails) == 0 {
		return out
	}
	k := tails[len(tails)-1]
	for l := len(tails) - 1; l >= 0; l-- {
		out[l] = k
		k = prev[k]
	}
	return out
}

// pairChanges turns each run of deletions and insertions between two equal
// steps into changes (paired in order) plus the unpaired rest. Moves do not
// end a run.
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
		case opMove:
			out = append(out, o)
		default:
			flush()
			out = append(out, o)
		}
	}
	flush()
	return out
}
