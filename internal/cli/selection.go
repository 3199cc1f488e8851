package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/storage"
)

// checkNotEmpty refuses a selection that contains no message (exit 1),
// saying what the capture holds instead: its topics when -t/-x match none
// of them, else its sessions and their span. play, export and cut call it
// before they connect or write anything.
func checkNotEmpty(ctx context.Context, c *storage.Capture, file string, q storage.Query) error {
	one := q
	one.Limit, one.Desc = 1, false
	for _, err := range c.Messages(ctx, one) {
		if err != nil {
			return err
		}
		return nil // at least one message
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if q.Match != nil {
		topics, err := c.Topics(ctx)
		if err != nil {
			return err
		}
		var names []string
		for _, t := range topics {
			if q.Match(t.Name) {
				names = nil
				break
			}
			names = append(names, t.Name)
		}
		if len(names) > 0 {
			return fmt.Errorf("nothing selected: -t/-x match none of the %s in %s: %s (see mqtape info)",
				humanize.Count(int64(len(names)), "topic", "topics"), file, listSome(names, 5))
		}
	}
	sessions, err := c.Sessions(ctx)
	if err != nil {
		return err
	}
	return fmt.Errorf("nothing selected: %s holds %s (--from/--to are offsets into each session or RFC 3339 times; see mqtape info)",
		file, describeSpan(sessions))
}

// listSome joins the first n names, and says how many more there are.
func listSome(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s, … (%d more)", strings.Join(names[:n], ", "), len(names)-n)
}

// describeSpan says what time a capture's sessions cover: "1 session of
// 5.2s, 2026-12-03 10:00:00 to 10:00:05 UTC".
func describeSpan(sessions []storage.SessionInfo) string {
	if len(sessions) == 0 {
		return "no session"
	}
	first, last := sessions[0].StartedNS, sessions[0].EndNS()
	var longest time.Duration
	for _, s := range sessions {
		first, last = min(first, s.StartedNS), max(last, s.EndNS())
		longest = max(longest, time.Duration(s.EndNS()-s.StartedNS))
	}
	const layout = "2006-01-02 15:04:05"
	from, to := time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
	toText := to.Format(layout)
	if from.Format("2006-01-02") == to.Format("2006-01-02") {
		toText = to.Format("15:04:05")
	}
	span := fmt.Sprintf("%s to %s UTC", from.Format(layout), toText)
	if len(sessions) == 1 {
		return fmt.Sprintf("1 session of %s, %s", longest.Round(time.Millisecond), span)
	}
	return fmt.Sprintf("%s, the longest %s, %s", humanize.Count(int64(len(sessions)), "session", "sessions"),
		longest.Round(time.Millisecond), span)
}
