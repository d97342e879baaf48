package artifacts

// Artifact kinds, written to the Arrow schema metadata as "sglr.kind".
const (
	KindDataset = "dataset"
	KindLabels  = "labels"
	KindTable   = "table"
)

// Dataset is a labelled image set. Images are float32 in [0,1], sample-major.
type Dataset struct {
	Shape       []int             // per-sample shape, e.g. [1 28 28] (C,H,W)
	Images      []float32         // len = N * prod(Shape)
	Labels      []int32           // the labels training sees (possibly noisy)
	IDs         []int64           // stable sample ids, unique within the dataset
	ClassNames  []string          // K names; K = len(ClassNames)
	CleanLabels []int32           // nil when the true labels are unknown
	Flipped     []bool            // nil when unknown; Flipped[i] = Labels[i] != CleanLabels[i]
	Meta        map[string]string // free-form provenance, stored as sorted schema metadata
}

// Labels are per-sample targets: hard labels, soft labels [N,K], or both.
type Labels struct {
	IDs  []int64
	Hard []int32   // nil when absent
	Soft []float32 // nil when absent; len = N*K, row-major
	K    int
	Meta map[string]string
}

// Table is a small table of any columns; each column sets exactly one of its slices.
type Table struct {
	Columns []Column
	Meta    map[string]string
}

// Column is one named table column.
type Column struct {
	Name    string
	Strings []string
	Ints    []int64
	Floats  []float64
}
