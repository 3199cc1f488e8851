// Package topic implements MQTT topic names and topic filters as defined by
// MQTT 3.1.1 section 4.7 and MQTT 5 section 4.7: validation of filters and
// names, and matching a name against a filter, including the rule that the
// wildcards '#' and '+' at the first level never match a topic starting with '$'.
package topic

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrInvalidFilter is wrapped by every error ValidateFilter returns.
var ErrInvalidFilter = errors.New("invalid topic filter")

// ErrInvalidName is wrapped by every error ValidateName returns.
var ErrInvalidName = errors.New("invalid topic name")

// maxLen is the longest topic an MQTT packet can carry (a 16-bit length prefix).
const maxLen = 65535

// ValidateFilter reports whether f is a well-formed topic filter: non-empty,
// valid UTF-8 without NUL, at most 65535 bytes, '#' only as the whole last
// level, '+' only as a whole level. Shared subscriptions ($share/group/filter)
// are accepted when the group is non-empty and the rest is a valid filter.
func ValidateFilter(f string) error {
	if err := validateCommon(f); err != nil {
		return fmt.Errorf("%w %q: %v", ErrInvalidFilter, f, err)
	}
	if rest, ok := strings.CutPrefix(f, "$share/"); ok {
		group, inner, found := strings.Cut(rest, "/")
		if !found || group == "" || strings.ContainsAny(group, "+#") {
			return fmt.Errorf("%w %q: a shared subscription is $share/GROUP/FILTER", ErrInvalidFilter, f)
		}
		if err := ValidateFilter(inner); err != nil {
			return fmt.Errorf("%w %q: %v", ErrInvalidFilter, f, errors.Unwrap(err))
		}
		return nil
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case l == "#" && i != len(levels)-1:
			return fmt.Errorf("%w %q: '#' must be the last level", ErrInvalidFilter, f)
		case l != "#" && strings.Contains(l, "#"):
			return fmt.Errorf("%w %q: '#' must occupy a whole level", ErrInvalidFilter, f)
		case l != "+" && strings.Contains(l, "+"):
			return fmt.Errorf("%w %q: '+' must occupy a whole level", ErrInvalidFilter, f)
		}
	}
	return nil
}

// ValidateName reports whether n is a valid topic name for PUBLISH: like a
// filter but without wildcards.
func ValidateName(n string) error {
	if err := validateCommon(n); err != nil {
		return fmt.Errorf("%w %q: %v", ErrInvalidName, n, err)
	}
	if strings.ContainsAny(n, "+#") {
		return fmt.Errorf("%w %q: wildcards '+' and '#' are not allowed in a topic name", ErrInvalidName, n)
	}
	return nil
}

func validateCommon(s string) error {
	switch {
	case s == "":
		return errors.New("empty")
	case len(s) > maxLen:
		return fmt.Errorf("longer than %d bytes", maxLen)
	case !utf8.ValidString(s):
		return errors.New("not valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		return errors.New("contains NUL")
	}
	return nil
}

// Match reports whether topic name n matches filter f. It does not validate
// either; an invalid filter simply matches what its literal levels match.
// A shared-subscription prefix ($share/group/) is ignored for matching.
func Match(f, n string) bool {
	if rest, ok := strings.CutPrefix(f, "$share/"); ok {
		if _, inner, found := strings.Cut(rest, "/"); found {
			f = inner
		}
	}
	// Spec 4.7.2: wildcards at the first level do not match '$' topics.
	if strings.HasPrefix(n, "$") && (strings.HasPrefix(f, "#") || strings.HasPrefix(f, "+")) {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(f, "/")
		if fl == "#" {
			return true
		}
		nl, nrest, nmore := strings.Cut(n, "/")
		if fl != "+" && fl != nl {
			return false
		}
		if !fmore || !nmore {
			// "a/#" also matches "a" (the parent level).
			return fmore == nmore || (nmore == false && frest == "#")
		}
		f, n = frest, nrest
	}
}

// Set is a list of filters matched as a union. A nil or empty Set matches
// every topic, including '$' topics.
type Set []string

// Match reports whether n matches any filter of s, or s is empty.
func (s Set) Match(n string) bool {
	if len(s) == 0 {
		return true
	}
	for _, f := range s {
		if Match(f, n) {
			return true
		}
	}
	return false
}

// ValidateAll validates every filter and returns the first error.
func ValidateAll(filters []string) error {
	for _, f := range filters {
		if err := ValidateFilter(f); err != nil {
			return err
		}
	}
	return nil
}
