// Package humanize formats numbers for people. It is shared by the CLI and
// the inspector so that both print counts the same way; stdlib only.
package humanize

import "strconv"

// GroupDigits formats n with a comma between groups of three digits:
// 1234567 as 1,234,567, -1234 as -1,234.
func GroupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	if neg {
		out = append(out, '-')
	}
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// Count formats n followed by the noun's singular or plural form, with
// grouped digits: Count(1, "message", "messages") is "1 message",
// Count(1234, "message", "messages") "1,234 messages". One helper for every
// count in prose, so that none says "1 messages".
func Count(n int64, one, many string) string {
	return GroupDigits(n) + " " + Plural(n, one, many)
}

// Plural returns one when n is 1 or -1, else many.
func Plural(n int64, one, many string) string {
	if n == 1 || n == -1 {
		return one
	}
	return many
}
