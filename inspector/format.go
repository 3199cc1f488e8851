package inspector

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/mqtt"
)

// Payload kinds, as the detail pane decides them.
type payloadKind int

const (
	kindEmpty payloadKind = iota
	kindJSON
	kindText
	kindBinary
)

func (k payloadKind) String() string {
	return [...]string{"empty", "json", "text", "binary"}[k]
}

// kindOf classifies a whole payload.
func kindOf(p []byte) payloadKind {
	switch {
	case len(p) == 0:
		return kindEmpty
	case looksJSON(p) && json.Valid(p):
		return kindJSON
	case isText(p, false):
		return kindText
	}
	return kindBinary
}

func looksJSON(p []byte) bool {
	t := bytes.TrimSpace(p)
	return len(t) > 0 && (t[0] == '{' || t[0] == '[' || t[0] == '"' || t[0] == '-' || (t[0] >= '0' && t[0] <= '9') ||
		bytes.Equal(t, []byte("true")) || bytes.Equal(t, []byte("false")) || bytes.Equal(t, []byte("null")))
}

// isText reports whether p is UTF-8 without control characters other than
// tab, newline and carriage return. truncated allows a cut final rune.
func isText(p []byte, truncated bool) bool {
	for i := 0; i < len(p); {
		r, n := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && n <= 1 {
			if truncated && !utf8.FullRune(p[i:]) {
				return true
			}
			return false
		}
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return false
		}
		i += n
	}
	return true
}

// previewText renders the start of a payload on one line for the table.
// size is the whole payload's length.
func previewText(p []byte, size int) string {
	if size == 0 {
		return "∅"
	}
	truncated := size > len(p)
	if !isText(p, truncated) {
		n := min(len(p), 24)
		s := "⟨bin⟩ " + spacedHex(p[:n])
		if size > n {
			s += " …"
		}
		return s
	}
	var b strings.Builder
	space := false
	for _, r := range string(p) {
		if r == utf8.RuneError {
			break // the cut final rune
		}
		if unicode.IsSpace(r) {
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteRune(r)
	}
	s := strings.TrimSpace(b.String())
	if truncated {
		s += "…"
	}
	return s
}

func spacedHex(p []byte) string {
	var b strings.Builder
	for i, c := range p {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(hex.EncodeToString([]byte{c}))
	}
	return b.String()
}

// Detail views, cycled with v.
type viewMode int

const (
	viewAuto viewMode = iota
	viewJSON
	viewText
	viewHex
	viewCount
)

func (v viewMode) String() string { return [...]string{"auto", "json", "text", "hex"}[v] }

const (
	maxTextShown = 64 << 10 // payload bytes shown as text or JSON
	maxHexShown  = 16 << 10 // payload bytes shown as a hex dump
)

// renderPayload formats a payload for the detail pane. It returns the text
// and the view actually used (auto resolves to json, text or hex).
func renderPayload(p []byte, mode viewMode) (string, viewMode) {
	if len(p) == 0 {
		return "(empty payload)", mode
	}
	if mode == viewAuto {
		switch kindOf(p) {
		case kindJSON:
			mode = viewJSON
		case kindText:
			mode = viewText
		default:
			mode = viewHex
		}
	}
	switch mode {
	case viewJSON:
		if len(p) > 4*maxTextShown {
			return "payload too large to indent as JSON (" + humanSize(len(p)) + "); v for text or hex\n", mode
		}
		var buf bytes.Buffer
		if err := json.Indent(&buf, p, "", "  "); err != nil {
			return "not JSON: " + err.Error() + "\n(v cycles the views)", mode
		}
		return capText(buf.Bytes(), len(p)), mode
	case viewText:
		if !utf8.Valid(p) {
			return capText(bytes.ToValidUTF8(p, []byte("\uFFFD")), len(p)) + "\n(not valid UTF-8: invalid bytes shown as \uFFFD)", mode
		}
		return capText(p, len(p)), mode
	}
	n := min(len(p), maxHexShown)
	s := hex.Dump(p[:n])
	if n < len(p) {
		s += fmt.Sprintf("… %s more (w writes the whole payload to a file)\n", humanSize(len(p)-n))
	}
	return s, viewHex
}

func capText(b []byte, total int) string {
	if len(b) <= maxTextShown {
		return string(b)
	}
	cut := maxTextShown
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return string(b[:cut]) + fmt.Sprintf("\n… truncated (payload is %s; w writes the whole payload to a file)", humanSize(total))
}

// humanSize formats a byte count compactly: 999, 1.2K, 3.4M.
func humanSize(n int) string {
	switch {
	case n < 1000:
		return strconv.Itoa(n)
	case n < 1000*1024:
		return strconv.FormatFloat(float64(n)/1024, 'f', 1, 64) + "K"
	case n < 1000*1024*1024:
		return strconv.FormatFloat(float64(n)/(1024*1024), 'f', 1, 64) + "M"
	}
	return strconv.FormatFloat(float64(n)/(1024*1024*1024), 'f', 1, 64) + "G"
}

// fmtOffset formats an offset since a session's start: +MM:SS.mmm or
// +H:MM:SS.mmm.
func fmtOffset(d time.Duration) string {
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	ms := d.Milliseconds()
	h, m, s, frac := ms/3600000, ms/60000%60, ms/1000%60, ms%1000
	if h > 0 {
		return fmt.Sprintf("%s%d:%02d:%02d.%03d", sign, h, m, s, frac)
	}
	return fmt.Sprintf("%s%02d:%02d.%03d", sign, m, s, frac)
}

// fmtSpan formats a duration for people: 17m48s, 2h03m, 850ms.
func fmtSpan(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// sanitize makes a name printable on one line (topics may contain anything).
func sanitize(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == utf8.RuneError }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			b.WriteString("�")
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// maxCorrelationShown is how many bytes of binary correlation data the
// detail pane shows as hex.
const maxCorrelationShown = 64

// propertyLines renders MQTT 5 properties for the detail pane, one per line
// as "key:\tvalue" (the pane colours the key): user properties one per line
// below a "user properties:" line, in their order (duplicates kept),
// correlation data as text when it is
// text and as hex when it is not.
func propertyLines(p *mqtt.Properties) []string {
	var out []string
	add := func(key, value string) { out = append(out, sanitize(key)+":\t"+sanitize(value)) }
	if p.ContentType != "" {
		add("content type", p.ContentType)
	}
	if p.PayloadFormat != nil {
		f := strconv.Itoa(int(*p.PayloadFormat))
		switch *p.PayloadFormat {
		case 0:
			f += " (unspecified bytes)"
		case 1:
			f += " (UTF-8 text)"
		}
		add("payload format", f)
	}
	if p.MessageExpiry != nil {
		add("message expiry", fmt.Sprintf("%d s", *p.MessageExpiry))
	}
	if p.ResponseTopic != "" {
		add("response topic", p.ResponseTopic)
	}
	if cd := p.CorrelationData; cd != nil {
		switch {
		case len(cd) > 0 && isText(cd, false):
			add("correlation data", string(cd))
		case len(cd) > maxCorrelationShown:
			add("correlation data", fmt.Sprintf("%s … (hex, %d bytes)", spacedHex(cd[:maxCorrelationShown]), len(cd)))
		default:
			add("correlation data", fmt.Sprintf("%s (hex, %s)", spacedHex(cd), humanize.Count(int64(len(cd)), "byte", "bytes")))
		}
	}
	if len(p.SubscriptionIDs) > 0 {
		ids := make([]string, len(p.SubscriptionIDs))
		for i, id := range p.SubscriptionIDs {
			ids[i] = strconv.Itoa(id)
		}
		add("subscription ids", strings.Join(ids, ", "))
	}
	if len(p.UserProperties) > 0 {
		out = append(out, "user properties:\t")
	}
	for _, up := range p.UserProperties {
		add("  "+up.Key, up.Value)
	}
	return out
}
