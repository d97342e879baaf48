package pipeline

import (
	"os"
	"reflect"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// listYAML feeds one Multi port a list mixing a gathered and a single
// reference; each variant below is the same pipeline with the list reordered.
const listYAML = `name: lists
seed: 5
matrix:
  scale: [1.5, 2.5]
stages:
  c:
    uses: count
    with: {scale: "${{ matrix.scale }}"}
  one:
    uses: count
    with: {n: 2}
  g:
    uses: gather
    inputs: {rows: [c.table[], one.table]}
`

// TestListInputRunsInListOrder runs a pipeline whose Multi port takes a list
// of references: the stage must see the artifacts in list order with the
// gathered ones tagged, the second run must be all hits, and reordering the
// list must change the consumer's cache key.
func TestListInputRunsInListOrder(t *testing.T) {
	ts := newTestStages("v1")
	store := openStore(t)
	dir := t.TempDir()
	p := mustLoad(t, writeFile(t, dir, "lists.yaml", listYAML), ts)
	first := mustRun(t, p, Options{Store: store, Jobs: 2})
	if first.Status != RunOK {
		t.Fatalf("run status %s: %v", first.Status, statuses(first))
	}
	g := instanceOf(t, first, "g")
	table := readTableOutput(t, store, g.Outputs["table"])
	if got, want := table.Columns[0].Strings, []string{"scale=1.5", "scale=2.5", ""}; !reflect.DeepEqual(got, want) {
		t.Errorf("gather saw tags %q, want %q (list order, single ref untagged)", got, want)
	}
	if n := len(p.Instances("g")[0].Producers); n != 3 {
		t.Errorf("g has %d producers, want 3", n)
	}

	second := mustRun(t, p, Options{Store: store, Jobs: 2})
	for id, st := range statuses(second) {
		if st != StatusCached {
			t.Errorf("second run: %s %s, want cached", id, st)
		}
	}

	reordered := mustLoad(t, writeFile(t, dir, "reordered.yaml", listYAML), ts, "stages.g.inputs.rows=[one.table, c.table[]]")
	third := mustRun(t, reordered, Options{Store: store, Jobs: 2})
	if got := instanceOf(t, third, "g"); got.Key == g.Key || got.Status != StatusRan {
		t.Errorf("reordered list: g key %s status %s, want a new key and a run", got.Key, got.Status)
	}
	table = readTableOutput(t, store, instanceOf(t, third, "g").Outputs["table"])
	if got, want := table.Columns[0].Strings, []string{"", "scale=1.5", "scale=2.5"}; !reflect.DeepEqual(got, want) {
		t.Errorf("reordered gather saw tags %q, want %q", got, want)
	}
}

// readTableOutput reads the table artifact d from store.
func readTableOutput(t *testing.T, store *artifacts.DirStore, d artifacts.Digest) *artifacts.Table {
	t.Helper()
	path, err := store.Path(d)
	if err != nil {
		t.Fatalf("path of %s: %v", d, err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	table, err := artifacts.ReadTable(f)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return table
}
