package engine

import (
	"fmt"
	"strings"
)

// graph is the validated shape of a definition: a directed acyclic graph
// with exactly one start node, and the order the executor visits nodes in.
type graph struct {
	start int
	// out lists each node's outgoing edge targets (node indexes), in the
	// order the edges were declared.
	out [][]int
	// order is a topological order of every node; among nodes whose
	// predecessors are all placed, the one listed first in the definition
	// comes first. Without edges it is the list order.
	order []int
}

// buildGraph resolves edges (explicit ones, then each node's next) into a
// graph. Without any edge or next, the nodes form a chain in list order.
func buildGraph(nodes []*node, edges []rawEdge) (*graph, error) {
	index := make(map[string]int, len(nodes))
	for i, n := range nodes {
		index[n.id] = i
	}
	all := append([]rawEdge(nil), edges...)
	for _, n := range nodes {
		all = append(all, n.targets...)
		if n.next != "" {
			all = append(all, rawEdge{from: n.id, to: n.next, origin: fmt.Sprintf("node %q", n.id), field: "next"})
		}
	}
	g := &graph{out: make([][]int, len(nodes))}
	if len(all) == 0 {
		for i := range nodes {
			g.order = append(g.order, i)
			if i+1 < len(nodes) {
				g.out[i] = []int{i + 1}
			}
		}
		return g, nil
	}

	// origin[from][to] remembers which declaration made an edge, for
	// duplicate and cycle messages.
	origin := make([]map[int]rawEdge, len(nodes))
	for _, e := range all {
		from, ok := index[e.from]
		if !ok {
			return nil, invalid("%s: field \"from\": unknown node %q", e.origin, e.from)
		}
		to, ok := index[e.to]
		if !ok {
			return nil, invalid("%s: field %q: unknown node %q", e.origin, e.field, e.to)
		}
		if nodes[from].branching && e.field != "" && !isTarget(nodes[from], e) {
			return nil, invalid("%s: field %q: edge %q → %q leaves a %s node, which continues through its branches only", e.origin, e.field, e.from, e.to, nodes[from].typ)
		}
		if origin[from] == nil {
			origin[from] = map[int]rawEdge{}
		}
		if prev, dup := origin[from][to]; dup {
			return nil, invalid("%s: field %q: duplicate edge %q → %q (also declared by %s)", e.origin, e.field, e.from, e.to, prev.origin)
		}
		origin[from][to] = e
		g.out[from] = append(g.out[from], to)
	}

	if err := findCycle(nodes, g.out, origin); err != nil {
		return nil, err
	}

	indegree := make([]int, len(nodes))
	for _, targets := range g.out {
		for _, t := range targets {
			indegree[t]++
		}
	}
	var starts []string
	for i, d := range indegree {
		if d == 0 {
			if len(starts) == 0 {
				g.start = i
			}
			starts = append(starts, fmt.Sprintf("%q", nodes[i].id))
		}
	}
	if len(starts) > 1 {
		return nil, invalid("field \"edges\": nodes %s have no incoming edge; exactly one start node is allowed", strings.Join(starts, ", "))
	}

	// Kahn's algorithm, always taking the first-listed ready node, so the
	// order is stable and follows the author's listing where it can.
	placed := make([]bool, len(nodes))
	for len(g.order) < len(nodes) {
		for i := range nodes {
			if !placed[i] && indegree[i] == 0 {
				placed[i] = true
				g.order = append(g.order, i)
				for _, t := range g.out[i] {
					indegree[t]--
				}
				break
			}
		}
	}
	return g, nil
}

// findCycle returns an EINVALID error naming the declaration that closes
// the first cycle found by a depth-first search in list order.
func findCycle(nodes []*node, out [][]int, origin []map[int]rawEdge) error {
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(nodes))
	var stack []int
	var visit func(u int) error
	visit = func(u int) error {
		color[u] = grey
		stack = append(stack, u)
		for _, v := range out[u] {
			switch color[v] {
			case grey:
				var path []string
				for i := len(stack) - 1; i >= 0; i-- {
					path = append([]string{fmt.Sprintf("%q", nodes[stack[i]].id)}, path...)
					if stack[i] == v {
						break
					}
				}
				path = append(path, fmt.Sprintf("%q", nodes[v].id))
				e := origin[u][v]
				return invalid("%s: field %q: edge %q → %q closes a cycle %s", e.origin, e.field, e.from, e.to, strings.Join(path, " → "))
			case white:
				if err := visit(v); err != nil {
					return err
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[u] = black
		return nil
	}
	for i := range nodes {
		if color[i] == white {
			if err := visit(i); err != nil {
				return err
			}
		}
	}
	return nil
}

// isTarget reports whether e is one of the branches n's type declared.
func isTarget(n *node, e rawEdge) bool {
	for _, t := range n.targets {
		if t.origin == e.origin && t.field == e.field && t.to == e.to {
			return true
		}
	}
	return false
}
