package inspector

import (
	"sort"
	"strings"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"

	"github.com/mqtape/mqtape/internal/humanize"
)

// topicTrie is the topic hierarchy with message counts per subtree. It holds
// topic names only (never messages).
type topicTrie struct {
	root *trieNode
}

type trieNode struct {
	level    string // this level's name
	path     string // the levels from the root joined with '/'
	own      int64  // messages on exactly this topic
	total    int64  // messages in the subtree
	isTopic  bool
	children map[string]*trieNode
	tv       *tview.TreeNode // created when first shown
}

func newTopicTrie() *topicTrie {
	return &topicTrie{root: &trieNode{children: map[string]*trieNode{}}}
}

// add records n messages on topic name (n may be 0 to just list it).
func (t *topicTrie) add(name string, n int64) {
	node := t.root
	node.total += n
	for i, level := range strings.Split(name, "/") {
		child := node.children[level]
		if child == nil {
			path := level
			if i > 0 {
				path = node.path + "/" + level
			}
			child = &trieNode{level: level, path: path, children: map[string]*trieNode{}}
			node.children[level] = child
		}
		child.total += n
		node = child
	}
	node.isTopic = true
	node.own += n
}

// sorted returns a node's children by level name.
func (n *trieNode) sorted() []*trieNode {
	out := make([]*trieNode, 0, len(n.children))
	for _, c := range n.children {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].level < out[j].level })
	return out
}

func (n *trieNode) label() string {
	name := n.level
	if name == "" {
		name = "(empty)"
	}
	return tview.Escape(sanitize(name)) + " [gray](" + humanize.GroupDigits(n.total) + ")[-]"
}

// topicTree is the tree pane: a tview.TreeView over the trie whose nodes are
// made when their parent is expanded, so huge topic sets stay cheap.
type topicTree struct {
	view *tview.TreeView
	trie *topicTrie
	root *tview.TreeNode
}

func newTopicTree() *topicTree {
	t := &topicTree{view: tview.NewTreeView(), trie: newTopicTrie()}
	t.root = tview.NewTreeNode("all topics").SetSelectable(true)
	t.view.SetRoot(t.root).SetCurrentNode(t.root)
	t.view.SetBorder(true).SetTitle(" topics (t) ")
	return t
}

// rebuild replaces the trie and redraws the tree, keeping expanded paths.
func (t *topicTree) rebuild(trie *topicTrie, counted bool) {
	expanded := map[string]bool{}
	var current string
	if cur := t.view.GetCurrentNode(); cur != nil {
		if n, ok := cur.GetReference().(*trieNode); ok {
			current = n.path
		}
	}
	var walk func(n *tview.TreeNode)
	walk = func(n *tview.TreeNode) {
		if tn, ok := n.GetReference().(*trieNode); ok && n.IsExpanded() && len(n.GetChildren()) > 0 {
			expanded[tn.path] = true
		}
		for _, c := range n.GetChildren() {
			walk(c)
		}
	}
	walk(t.root)
	t.trie = trie
	label := "all topics"
	if counted {
		label += " [gray](" + humanize.GroupDigits(trie.root.total) + ")[-]"
	}
	t.root.SetText(label).ClearChildren()
	t.view.SetCurrentNode(t.root)
	t.expand(t.root, trie.root, expanded, current)
}

// expand adds the children of trie node n under tree node tv, recursing into
// previously expanded paths.
func (t *topicTree) expand(tv *tview.TreeNode, n *trieNode, expanded map[string]bool, current string) {
	tv.ClearChildren()
	for _, c := range n.sorted() {
		node := tview.NewTreeNode(c.label()).SetReference(c).SetSelectable(true)
		c.tv = node
		if len(c.children) > 0 {
			node.SetColor(tcell.ColorTeal)
			node.SetExpanded(false)
			if expanded[c.path] {
				t.expand(node, c, expanded, current)
				node.SetExpanded(true)
			}
		}
		if c.path == current {
			t.view.SetCurrentNode(node)
		}
		tv.AddChild(node)
	}
	tv.SetExpanded(true)
}

// toggle expands or collapses the current node.
func (t *topicTree) toggle() {
	cur := t.view.GetCurrentNode()
	if cur == nil {
		return
	}
	n, ok := cur.GetReference().(*trieNode)
	if !ok {
		cur.SetExpanded(!cur.IsExpanded())
		return
	}
	if len(cur.GetChildren()) == 0 && len(n.children) > 0 {
		t.expand(cur, n, nil, "")
		return
	}
	cur.SetExpanded(!cur.IsExpanded())
}

// collapseOrParent collapses the current node, or moves to its parent.
func (t *topicTree) collapseOrParent() {
	cur := t.view.GetCurrentNode()
	if cur == nil {
		return
	}
	if cur.IsExpanded() && len(cur.GetChildren()) > 0 && cur != t.root {
		cur.SetExpanded(false)
		return
	}
	path := t.view.GetPath(cur)
	if len(path) >= 2 {
		t.view.SetCurrentNode(path[len(path)-2])
	}
}

// expandCurrent opens the current node.
func (t *topicTree) expandCurrent() {
	cur := t.view.GetCurrentNode()
	if cur == nil {
		return
	}
	if n, ok := cur.GetReference().(*trieNode); ok && len(cur.GetChildren()) == 0 && len(n.children) > 0 {
		t.expand(cur, n, nil, "")
	}
	cur.SetExpanded(true)
}

// selectedFilter is the topic filter of the current node: "" for the root
// (every topic).
func (t *topicTree) selectedFilter() string {
	cur := t.view.GetCurrentNode()
	if cur == nil {
		return ""
	}
	n, ok := cur.GetReference().(*trieNode)
	if !ok {
		return ""
	}
	return n.path + "/#"
}

// has reports whether name is a known topic.
func (t *topicTrie) has(name string) bool {
	node := t.root
	for _, level := range strings.Split(name, "/") {
		if node = node.children[level]; node == nil {
			return false
		}
	}
	return node.isTopic
}
