package timespec

import (
	"errors"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Point
		err  bool
	}{
		{"90s", Point{Offset: 90 * time.Second}, false},
		{"1m30s", Point{Offset: 90 * time.Second}, false},
		{"0", Point{}, false},
		{"250ms", Point{Offset: 250 * time.Millisecond}, false},
		{"2026-11-26T10:00:00Z", Point{Time: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC), Absolute: true}, false},
		{"2026-11-26T10:00:00.5+01:00", Point{Time: time.Date(2026, 11, 26, 9, 0, 0, 5e8, time.UTC), Absolute: true}, false},
		{"-5s", Point{}, true},
		{"", Point{}, true},
		{"yesterday", Point{}, true},
		{"90", Point{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.err {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Parse(%q) error = %v, want ErrInvalid", tt.in, err)
				}
				return
			}
			if err != nil || got.Absolute != tt.want.Absolute || got.Offset != tt.want.Offset || !got.Time.Equal(tt.want.Time) {
				t.Fatalf("Parse(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}
