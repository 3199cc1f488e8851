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
	one.MaxPayload = 1 // whether a message exists, not its payload (which may be huge)
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
	where, err := untimedSpan(ctx, c, q, sessions)
	if err != nil {
		return err
	}
	return fmt.Errorf("nothing selected: %s holds %s%s (--from/--to are offsets into each session or RFC 3339 times; see mqtape info)",
		file, describeSpan(sessions), where)
}

// untimedSpan says where the messages q selects without its --from/--to
// lie ("; without --from/--to the selection lies at +44ms to +1.046s
// (11:26:09.071 to 11:26:10.117 UTC)"): a range inside a session can
// still miss every message. "" when the range is not what emptied q, or
// when those messages span the sessions from start to end.
func untimedSpan(ctx context.Context, c *storage.Capture, q storage.Query, sessions []storage.SessionInfo) (string, error) {
	if q.FromOffset == nil && q.ToOffset == nil && q.FromTime == nil && q.ToTime == nil {
		return "", nil
	}
	q.FromOffset, q.ToOffset, q.FromTime, q.ToTime = nil, nil, nil, nil
	var ends []storage.Message
	for _, desc := range []bool{false, true} {
		one := q
		one.Limit, one.Desc = 1, desc
		for m, err := range c.Messages(ctx, one) {
			if err != nil {
				return "", err
			}
			ends = append(ends, m)
		}
	}
	if len(ends) < 2 {
		return "", ctx.Err()
	}
	first, last := ends[0], ends[1]
	start, end := first.TimeNS, last.TimeNS
	for _, s := range sessions {
		start, end = min(start, s.StartedNS), max(end, s.EndNS())
	}
	if first.TimeNS-start < int64(time.Millisecond) && end-last.TimeNS < int64(time.Millisecond) {
		return "", nil // describeSpan says it all
	}
	at := func(m storage.Message) string {
		off := "+" + time.Duration(m.OffsetNS).Round(time.Millisecond).String()
		if first.Session != last.Session {
			off += fmt.Sprintf(" (session %d)", m.Session)
		}
		return off
	}
	const layout = "15:04:05.000"
	if first.Seq == last.Seq {
		return fmt.Sprintf("; without --from/--to the selection is one message at %s (%s UTC)", at(first),
			time.Unix(0, first.TimeNS).UTC().Format(layout)), nil
	}
	return fmt.Sprintf("; without --from/--to the selection lies at %s to %s (%s to %s UTC)", at(first), at(last),
		time.Unix(0, first.TimeNS).UTC().Format(layout), time.Unix(0, last.TimeNS).UTC().Format(layout)), nil
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
