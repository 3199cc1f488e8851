package inspector

import (
	"math"
	"strings"
)

// blockChart draws non-negative values as vertical bars, one column per
// value, height rows tall, with eighth-block characters for the tops.
// Row 0 of the result is the top.
func blockChart(values []float64, height int) []string {
	if height <= 0 {
		return nil
	}
	top := 0.0
	for _, v := range values {
		if v > top && !math.IsInf(v, 0) {
			top = v
		}
	}
	eighths := []rune(" ▁▂▃▄▅▆▇█")
	rows := make([][]rune, height)
	for i := range rows {
		rows[i] = []rune(strings.Repeat(" ", len(values)))
	}
	for x, v := range values {
		if top <= 0 || v <= 0 || math.IsNaN(v) {
			continue
		}
		units := int(math.Round(min(v, top) / top * float64(height*8)))
		units = max(units, 1) // anything non-zero shows
		for y := 0; y < height && units > 0; y++ {
			n := min(units, 8)
			rows[height-1-y][x] = eighths[n]
			units -= n
		}
	}
	out := make([]string, height)
	for i, r := range rows {
		out[i] = string(r)
	}
	return out
}

// brailleChart plots columns of [lo, hi] value ranges (NaN: no data) as a
// braille line chart: each character is 2 columns × 4 rows of dots, so the
// result is len(lo)/2 characters wide and height rows tall. ymin/ymax give
// the vertical scale. Row 0 is the top.
func brailleChart(lo, hi []float64, ymin, ymax float64, height int) []string {
	width := (len(lo) + 1) / 2
	if height <= 0 || width == 0 {
		return nil
	}
	dotsY := height * 4
	grid := make([][]uint8, height) // braille dot bits per cell
	for i := range grid {
		grid[i] = make([]uint8, width)
	}
	// Dot bit for (column within cell, row within cell).
	bits := [2][4]uint8{{0x01, 0x02, 0x04, 0x40}, {0x08, 0x10, 0x20, 0x80}}
	scale := func(v float64) int { // dot row from the top
		if ymax <= ymin {
			return dotsY / 2
		}
		f := (v - ymin) / (ymax - ymin)
		y := int(math.Round((1 - f) * float64(dotsY-1)))
		return min(max(y, 0), dotsY-1)
	}
	prevY := -1
	for x := range lo {
		if math.IsNaN(lo[x]) || math.IsNaN(hi[x]) {
			prevY = -1
			continue
		}
		y1, y2 := scale(hi[x]), scale(lo[x])
		// Join to the previous column so a line stays connected.
		if prevY >= 0 {
			if prevY < y1 {
				y1 = prevY
			} else if prevY > y2 {
				y2 = prevY
			}
		}
		for y := y1; y <= y2; y++ {
			grid[y/4][x/2] |= bits[x%2][y%4]
		}
		prevY = scale((lo[x] + hi[x]) / 2)
	}
	out := make([]string, height)
	for i, row := range grid {
		var b strings.Builder
		for _, cell := range row {
			if cell == 0 {
				b.WriteRune(' ')
			} else {
				b.WriteRune(rune(0x2800 + int(cell)))
			}
		}
		out[i] = b.String()
	}
	return out
}
