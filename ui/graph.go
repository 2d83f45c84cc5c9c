package ui

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/orcheo/orcheo"
)

// The workflow page draws a version's graph as server-rendered SVG: nodes
// in layers top to bottom (a node's layer is its longest path from a
// start node), edges as lines between them. The graph is read from the
// compiled (canonical) definition the store holds, which the engine has
// validated as a DAG; the UI reads it as JSON rather than importing the
// engine.

// Sizes of the drawing, in SVG units (the image scales to the page).
const (
	graphNodeW   = 168
	graphNodeH   = 44
	graphGapX    = 28
	graphGapY    = 46
	graphMargin  = 16
	graphMaxNode = 300 // a larger graph is not drawn: the page says so
	graphLabelN  = 20  // characters of a node id shown in its box
)

// definitionGraph is what the UI reads of a canonical definition.
type definitionGraph struct {
	Nodes []struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Next string `json:"next"`
		// if
		Then string `json:"then"`
		Else string `json:"else"`
		// switch
		Cases []struct {
			To string `json:"to"`
		} `json:"cases"`
		Default string `json:"default"`
	} `json:"nodes"`
	Edges []struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"edges"`
}

// graphView is the drawing.
type graphView struct {
	Width, Height int
	Nodes         []graphNode
	Edges         []graphEdge
	// Run is the run whose path is highlighted, "" for none.
	Run      string
	TooLarge int // the node count, when too large to draw
}

type graphNode struct {
	ID, Label, Type string
	X, Y            int
	// Status is the node's step status in the highlighted run ("" when
	// it has no step there); Taken is true when it ran (any status but
	// skipped).
	Status string
	Taken  bool
}

type graphEdge struct {
	From, To       string
	X1, Y1, X2, Y2 int
	Label          string
	LX, LY         int
	Taken          bool
}

// newGraph lays out the definition's graph, highlighting the nodes that
// have steps in steps (the chosen run's latest attempt) and the edges
// between two such nodes. A definition it cannot read is an error.
func newGraph(definition json.RawMessage, runID string, steps map[string]orcheo.StepStatus) (*graphView, error) {
	var def definitionGraph
	if err := json.Unmarshal(definition, &def); err != nil {
		return nil, fmt.Errorf("read the definition's graph: %w", err)
	}
	n := len(def.Nodes)
	if n > graphMaxNode {
		return &graphView{TooLarge: n}, nil
	}
	index := make(map[string]int, n)
	for i, nd := range def.Nodes {
		index[nd.ID] = i
	}
	type edge struct {
		from, to int
		label    string
	}
	var edges []edge
	seen := map[[2]int]bool{}
	add := func(from, to, label string) {
		f, ok1 := index[from]
		t, ok2 := index[to]
		if !ok1 || !ok2 || to == "" || seen[[2]int{f, t}] {
			return
		}
		seen[[2]int{f, t}] = true
		edges = append(edges, edge{f, t, label})
	}
	for _, e := range def.Edges {
		add(e.From, e.To, "")
	}
	for _, nd := range def.Nodes {
		add(nd.ID, nd.Next, "")
		add(nd.ID, nd.Then, "then")
		add(nd.ID, nd.Else, "else")
		for i, c := range nd.Cases {
			add(nd.ID, c.To, fmt.Sprintf("case %d", i+1))
		}
		add(nd.ID, nd.Default, "default")
	}
	if len(edges) == 0 { // without edges the nodes run in list order
		for i := 0; i+1 < n; i++ {
			edges = append(edges, edge{i, i + 1, ""})
		}
	}

	// Layer = longest path from a node without predecessors, by
	// relaxing in a topological order (Kahn's, list order among ties).
	out := make([][]int, n)
	indeg := make([]int, n)
	for _, e := range edges {
		out[e.from] = append(out[e.from], e.to)
		indeg[e.to]++
	}
	layer := make([]int, n)
	var queue []int
	for i := 0; i < n; i++ {
		if indeg[i] == 0 {
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, t := range out[v] {
			layer[t] = max(layer[t], layer[v]+1)
			if indeg[t]--; indeg[t] == 0 {
				queue = append(queue, t)
			}
		}
	}
	// Rows of nodes by layer, in list order within a row.
	var rows [][]int
	for i := 0; i < n; i++ {
		for len(rows) <= layer[i] {
			rows = append(rows, nil)
		}
		rows[layer[i]] = append(rows[layer[i]], i)
	}
	widest := 1
	for _, row := range rows {
		widest = max(widest, len(row))
	}
	g := &graphView{Run: runID,
		Width:  2*graphMargin + widest*graphNodeW + (widest-1)*graphGapX,
		Height: 2*graphMargin + len(rows)*graphNodeH + max(len(rows)-1, 0)*graphGapY,
		Nodes:  make([]graphNode, n)}
	for y, row := range rows {
		// Each row is centred.
		rowW := len(row)*graphNodeW + (len(row)-1)*graphGapX
		x0 := (g.Width - rowW) / 2
		for k, i := range row {
			nd := def.Nodes[i]
			st := steps[nd.ID]
			g.Nodes[i] = graphNode{ID: nd.ID, Label: truncate(nd.ID, graphLabelN), Type: nd.Type,
				X: x0 + k*(graphNodeW+graphGapX), Y: graphMargin + y*(graphNodeH+graphGapY),
				Status: string(st), Taken: st != "" && st != orcheo.StepSkipped}
		}
	}
	sort.SliceStable(edges, func(i, j int) bool { return edges[i].from < edges[j].from })
	for _, e := range edges {
		a, b := g.Nodes[e.from], g.Nodes[e.to]
		ge := graphEdge{From: a.ID, To: b.ID, Label: e.label, Taken: a.Taken && b.Taken,
			X1: a.X + graphNodeW/2, Y1: a.Y + graphNodeH, X2: b.X + graphNodeW/2, Y2: b.Y}
		ge.LX, ge.LY = (ge.X1+ge.X2)/2+4, (ge.Y1+ge.Y2)/2
		g.Edges = append(g.Edges, ge)
	}
	return g, nil
}
