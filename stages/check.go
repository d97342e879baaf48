package stages

// Checker is implemented by a stage whose parameters obey rules its Spec
// cannot state: rules over several parameters (train: warm-up before the last
// epoch, no fgsm with trades), and parameters that must agree with what the
// stage reads (report: rows and cols name columns its tables have). The
// pipeline calls Check for every instance when it is loaded, after every
// parameter has been typed and checked against its declaration and before
// anything runs (`plan` and `run` both), and reports each problem at the
// parameter's value in the file (or at the list element Problem.Elem names)
// with the problem's Hint.
//
// Check must be cheap and depend only on its arguments. A stage calls the
// same rules when it runs (on a request that did not come from a checked
// pipeline), so that each rule is written once.
//
// Exec plugins do not implement it: they state what they can in `describe`
// (types, ranges, enums, enums on list elements), and a rule over several of
// their parameters is reported when they run.
type Checker interface {
	Check(params Params, inputs map[string][]Upstream) []Problem
}

// Upstream is what a Check learns, at plan time, about one artifact an input
// port will read: who produces it, with which parameters, and what it holds.
type Upstream struct {
	Stage  string            // the producing stage's `uses:` ("eval", "exec:./x")
	Output string            // the producer's output port
	Params Params            // the producer's typed parameters
	Tags   map[string]string // the matrix tags the artifact arrives with (gathered inputs; nil otherwise)
	// Columns are what the producer declares the output holds (see
	// ColumnDeclarer); nil when it declares nothing, so a check must not
	// conclude that a column is missing.
	Columns []Column
}

// ColumnDeclarer is implemented by a stage that can say, at plan time, which
// columns a table (or predictions) output holds, so that a consumer's Check
// can refuse a column name or value that will not be there before anything
// runs. inputs are the instance's own upstreams, for columns it passes on.
// Columns returns nil for a port it cannot say anything about.
type ColumnDeclarer interface {
	Columns(port string, params Params, inputs map[string][]Upstream) []Column
}

// Column is one declared column of an output.
type Column struct {
	Name    string
	Numeric bool
	// Values are the values a text column takes, when they are known at plan
	// time; nil when they are not.
	Values []string
}
