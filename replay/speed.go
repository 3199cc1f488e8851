package replay

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrBadSpeed is wrapped by ParseSpeed's errors.
var ErrBadSpeed = errors.New("use a positive number (0.25, 1, 4) or max")

// ParseSpeed reads a playback rate for Config.Speed: "max" (any case) is
// math.Inf(1), as fast as possible; otherwise a positive finite number,
// optionally followed by x: 0.25, 1, 4 or 4x. 0 is refused (Config.Speed
// reads 0 as 1, which a user typing 0 would not expect), as are negative
// numbers, NaN and infinities.
func ParseSpeed(s string) (float64, error) {
	if strings.EqualFold(s, "max") {
		return math.Inf(1), nil
	}
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "x"), 64)
	if err != nil || !(v > 0) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("speed %q: %w", s, ErrBadSpeed)
	}
	return v, nil
}
