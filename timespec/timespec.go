// Package timespec parses the points in time users give to --from, --to and
// the inspector's jump: an offset since a session's start ("90s", "1m30s",
// "250ms") or an absolute RFC 3339 time ("2026-11-26T10:00:00Z").
package timespec

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("invalid time")

// Point is either an offset or an absolute time.
type Point struct {
	Offset   time.Duration // when !Absolute
	Time     time.Time     // when Absolute
	Absolute bool
}

// Parse reads an offset (a Go duration such as 90s or 1m30s, not negative)
// or an RFC 3339 time.
func Parse(s string) (Point, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Point{}, fmt.Errorf("%w: empty", ErrInvalid)
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return Point{}, fmt.Errorf("%w %q: offsets count from the start and cannot be negative", ErrInvalid, s)
		}
		return Point{Offset: d}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return Point{Time: t, Absolute: true}, nil
	}
	return Point{}, fmt.Errorf("%w %q: use an offset like 90s or 1m30s, or an RFC 3339 time like 2026-11-26T10:00:00Z", ErrInvalid, s)
}

// String formats p the way Parse reads it.
func (p Point) String() string {
	if p.Absolute {
		return p.Time.Format(time.RFC3339Nano)
	}
	return p.Offset.String()
}
