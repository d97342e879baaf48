package calibrate

import "github.com/sglr-pipe/sglr-pipe/stages"

// numericColumns are the number columns of each output table.
var numericColumns = map[string][]string{
	"metrics": {ColN, ColAccuracy, ColECE, ColMCE, ColNLL, ColBrier, ColTemperature, ColECEScaled, ColNLLScaled},
	"bins":    {ColBin, ColLo, ColHi, ColCount, ColAccuracy, ColConfidence},
	"hist":    {ColBin, ColLo, ColHi, ColCount},
}

// Columns implements stages.ColumnDeclarer: each table holds the text
// columns of the predictions it is computed from (checkpoint, attack, and
// whatever else their producer declares, such as eval's matrix tags), one
// row group per (checkpoint, attack), and its numbers. It declares nothing
// when the producer of the predictions declares nothing.
func (Stage) Columns(port string, _ stages.Params, inputs map[string][]stages.Upstream) []stages.Column {
	numeric, known := numericColumns[port]
	preds := inputs["predictions"]
	if !known || len(preds) != 1 || preds[0].Columns == nil {
		return nil
	}
	var cols []stages.Column
	for _, c := range preds[0].Columns {
		if !c.Numeric {
			cols = append(cols, c)
		}
	}
	for _, name := range numeric {
		cols = append(cols, stages.Column{Name: name, Numeric: true})
	}
	return cols
}
