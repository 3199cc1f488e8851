package inspector

import (
	"fmt"
	"strings"

	"github.com/gdamore/tcell/v2"
	"github.com/mqtape/mqtape/filter"
	"github.com/rivo/tview"
)

// scope says where a binding applies: everywhere, or when a pane has focus.
type scope int

const (
	scopeGlobal scope = iota
	scopeTable
	scopeTree
	scopeStats
)

func (s scope) String() string {
	return [...]string{"everywhere", "message table", "topic tree", "statistics"}[s]
}

// keyID is one key: a special key, or a rune when key is tcell.KeyRune.
type keyID struct {
	key tcell.Key
	ch  rune
}

func keyRune(ch rune) keyID          { return keyID{tcell.KeyRune, ch} }
func keySpecial(key tcell.Key) keyID { return keyID{key: key} }

func (id keyID) String() string {
	if id.key == tcell.KeyRune {
		if id.ch == ' ' {
			return "Space"
		}
		return string(id.ch)
	}
	if name, ok := tcell.KeyNames[id.key]; ok {
		return name
	}
	return fmt.Sprintf("key %d", id.key)
}

// binding is one entry of the key table, which drives both dispatch and
// the help (the bar at the bottom and the ? screen).
type binding struct {
	keys  []keyID
	scope scope
	bar   string // label in the key bar; "" keeps it out of the bar
	help  string
	run   func(u *UI)
}

// bindings is the key table.
func bindings() []binding {
	return []binding{
		{keys: []keyID{keyRune('q'), keySpecial(tcell.KeyCtrlC)}, bar: "quit", help: "quit and restore the terminal (Ctrl-C also in a prompt)", run: (*UI).quit},
		{keys: []keyID{keyRune('?')}, bar: "help", help: "this help", run: (*UI).toggleHelp},
		{keys: []keyID{keyRune('/')}, bar: "filter", help: "filter: topics, payload, QoS, retained, time (Enter applies, Esc clears)", run: (*UI).openFilter},
		{keys: []keyID{keyRune(':')}, bar: "jump", help: "jump to an offset (1m30s), a clock time (10:05:30), ±30s from here, or a seq (#123)", run: (*UI).openJump},
		{keys: []keyID{keyRune('t')}, bar: "tree", help: "show or hide the topic tree (Enter filters to the node's subtree)", run: (*UI).toggleTree},
		{keys: []keyID{keyRune('s')}, bar: "stats", help: "statistics: per topic, message rate, a numeric JSON field over time", run: (*UI).toggleStats},
		{keys: []keyID{keyRune('v')}, bar: "view", help: "cycle the payload view: auto, JSON, text, hex", run: (*UI).cycleView},
		{keys: []keyID{keyRune('d')}, bar: "diff", help: "difference to the previous message on the same topic", run: (*UI).toggleDiff},
		{keys: []keyID{keyRune('r')}, bar: "rel.time", help: "show times as clock times or as offsets into the session", run: (*UI).toggleRelTime},
		{keys: []keyID{keyRune('f')}, bar: "follow", help: "follow mode: keep the newest message selected as the capture grows", run: (*UI).toggleFollow},
		{keys: []keyID{keyRune('e')}, bar: "export", help: "export the messages the filter selects to a JSON lines file", run: (*UI).openExport},
		{keys: []keyID{keyRune('w')}, bar: "write", help: "write the selected message's payload to a file", run: (*UI).openWrite},
		{keys: []keyID{keyRune('p')}, bar: "play", help: "play the filtered messages from the selected one to a broker", run: (*UI).openPlay},
		{keys: []keyID{keySpecial(tcell.KeyTab)}, help: "next pane (table, detail, tree)", run: (*UI).focusNext},
		{keys: []keyID{keySpecial(tcell.KeyEscape)}, help: "cancel a running export or play; clear the status line", run: (*UI).escape},

		{keys: []keyID{keySpecial(tcell.KeyDown), keyRune('j')}, scope: scopeTable, help: "next message", run: func(u *UI) { u.moveBy(1) }},
		{keys: []keyID{keySpecial(tcell.KeyUp), keyRune('k')}, scope: scopeTable, help: "previous message", run: func(u *UI) { u.moveBy(-1) }},
		{keys: []keyID{keySpecial(tcell.KeyPgDn), keySpecial(tcell.KeyCtrlF), keyRune(' ')}, scope: scopeTable, help: "page down", run: (*UI).pageDown},
		{keys: []keyID{keySpecial(tcell.KeyPgUp), keySpecial(tcell.KeyCtrlB)}, scope: scopeTable, help: "page up", run: (*UI).pageUp},
		{keys: []keyID{keySpecial(tcell.KeyHome), keyRune('g')}, scope: scopeTable, help: "first message", run: (*UI).home},
		{keys: []keyID{keySpecial(tcell.KeyEnd), keyRune('G')}, scope: scopeTable, help: "last message", run: (*UI).end},
		{keys: []keyID{keySpecial(tcell.KeyEnter)}, scope: scopeTable, help: "focus the detail pane (scroll it with the arrows)", run: (*UI).focusDetail},

		{keys: []keyID{keySpecial(tcell.KeyEnter)}, scope: scopeTree, help: "filter to this node's subtree (node/#); the top node clears the topic filter", run: (*UI).treeChoose},
		{keys: []keyID{keySpecial(tcell.KeyRight), keyRune(' '), keyRune('l')}, scope: scopeTree, help: "expand", run: func(u *UI) { u.tree.expandCurrent() }},
		{keys: []keyID{keySpecial(tcell.KeyLeft), keyRune('h')}, scope: scopeTree, help: "collapse, or go to the parent", run: func(u *UI) { u.tree.collapseOrParent() }},
		{keys: []keyID{keySpecial(tcell.KeyHome), keyRune('g')}, scope: scopeTree, help: "the top node (all topics)", run: func(u *UI) { u.tree.view.SetCurrentNode(u.tree.root) }},

		{keys: []keyID{keyRune('n')}, scope: scopeStats, help: "plot the next numeric field of the selected message's topic", run: func(u *UI) { u.nextField(1) }},
		{keys: []keyID{keyRune('N')}, scope: scopeStats, help: "plot the previous numeric field", run: func(u *UI) { u.nextField(-1) }},
	}
}

func (b *binding) matches(ev *tcell.EventKey) bool {
	for _, id := range b.keys {
		if id.key == tcell.KeyRune {
			if ev.Key() == tcell.KeyRune && ev.Rune() == id.ch && ev.Modifiers()&(tcell.ModAlt|tcell.ModCtrl) == 0 {
				return true
			}
		} else if ev.Key() == id.key {
			return true
		}
	}
	return false
}

// onKey is the application's input capture: it dispatches the key table
// unless a text field is being edited.
func (u *UI) onKey(ev *tcell.EventKey) *tcell.EventKey {
	if ev.Key() == tcell.KeyCtrlC { // everywhere, also in the prompt
		u.quit()
		return nil
	}
	if u.helpShown {
		switch {
		case ev.Key() == tcell.KeyEscape, ev.Key() == tcell.KeyRune && (ev.Rune() == '?' || ev.Rune() == 'q'):
			u.toggleHelp()
			return nil
		}
		return ev // scroll the help
	}
	if u.app.GetFocus() == u.prompt {
		return u.promptCapture(ev)
	}
	sc := u.focusScope()
	for i := range u.keys {
		b := &u.keys[i]
		if (b.scope == scopeGlobal || b.scope == sc) && b.matches(ev) {
			b.run(u)
			return nil
		}
	}
	return ev
}

func (u *UI) focusScope() scope {
	switch u.app.GetFocus() {
	case u.table:
		return scopeTable
	case u.tree.view:
		return scopeTree
	}
	if u.statsShown {
		return scopeStats
	}
	return scopeGlobal
}

func (u *UI) keyBarText() string {
	var parts []string
	for _, b := range u.keys {
		if b.bar != "" {
			parts = append(parts, fmt.Sprintf("[black:teal]%s[-:-] %s", tview.Escape(b.keys[0].String()), b.bar))
		}
	}
	return strings.Join(parts, " ")
}

func (u *UI) helpText() string {
	var b strings.Builder
	for _, sc := range []scope{scopeGlobal, scopeTable, scopeTree, scopeStats} {
		fmt.Fprintf(&b, "[yellow::b]%s[-::-]\n", sc)
		for _, k := range u.keys {
			if k.scope != sc {
				continue
			}
			var names []string
			for _, id := range k.keys {
				names = append(names, id.String())
			}
			fmt.Fprintf(&b, "  [aqua]%-18s[-] %s\n", tview.Escape(strings.Join(names, " ")), tview.Escape(k.help))
		}
		b.WriteString("\n")
	}
	b.WriteString("[yellow::b]filter line[-::-]\n")
	b.WriteString(tview.Escape(filter.Help))
	b.WriteString("\n\n[yellow::b]mouse[-::-]\n  click a row or a tree node to select it; the wheel scrolls\n")
	return b.String()
}
