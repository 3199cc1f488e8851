package replay

import (
	"errors"
	"math"
	"testing"
)

func TestParseSpeed(t *testing.T) {
	tests := []struct {
		in   string
		want float64 // 0: refused
	}{
		{"1", 1},
		{"4", 4},
		{"4x", 4},
		{"0.25", 0.25},
		{".5x", 0.5},
		{"1e3", 1000},
		{"max", math.Inf(1)},
		{"MAX", math.Inf(1)},
		{"Max", math.Inf(1)},
		{"0", 0},
		{"0x", 0},
		{"0.0", 0},
		{"-2", 0},
		{"-0", 0},
		{"", 0},
		{"x", 0},
		{"fast", 0},
		{"4X", 0},
		{"4xx", 0},
		{" 2", 0},
		{"NaN", 0},
		{"Inf", 0},
		{"+Inf", 0},
		{"infinity", 0},
		{"1e400", 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSpeed(tt.in)
			if tt.want == 0 {
				if err == nil || !errors.Is(err, ErrBadSpeed) {
					t.Fatalf("ParseSpeed(%q) = %v, %v; want ErrBadSpeed", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseSpeed(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
	if _, err := ParseSpeed("0"); err == nil || err.Error() != `speed "0": use a positive number (0.25, 1, 4) or max` {
		t.Errorf("error text: %v", err)
	}
}
