package datafile

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// CIFARImageBytes is the pixel payload of one CIFAR record: 3 channels of 32x32, channel-major.
const CIFARImageBytes = 3 * 32 * 32

// CIFARShape is the per-sample shape of CIFAR images (C,H,W).
var CIFARShape = []int{3, 32, 32}

// CIFARFormat describes one CIFAR binary layout.
type CIFARFormat struct {
	Name       string // "cifar10" or "cifar100", for messages
	LabelBytes int    // label bytes before the pixels: 1 (CIFAR-10) or 2 (CIFAR-100: coarse, fine)
	LabelIndex int    // which label byte is the label: 0 for CIFAR-10, 1 (fine) for CIFAR-100
	Classes    int    // labels must be below this
	MaxOther   int    // for CIFAR-100, the coarse byte must be below this (20); 0 to skip
}

// CIFAR10 is the CIFAR-10 binary layout: 1 label byte, 3072 pixel bytes.
var CIFAR10 = CIFARFormat{Name: "cifar10", LabelBytes: 1, LabelIndex: 0, Classes: 10}

// CIFAR100 is the CIFAR-100 binary layout: coarse byte, fine byte, 3072 pixel
// bytes; the fine label (100 classes) is used.
var CIFAR100 = CIFARFormat{Name: "cifar100", LabelBytes: 2, LabelIndex: 1, Classes: 100, MaxOther: 20}

// RecordSize is the byte length of one record.
func (f CIFARFormat) RecordSize() int { return f.LabelBytes + CIFARImageBytes }

// DecodeCIFAR decodes size bytes of CIFAR records from r into float32 images
// in [0,1] (sample-major, C,H,W) and labels. size must be a multiple of the
// record size; it is checked before anything is allocated.
// Files hold at most 10000 records, so the growth past the preallocation is cheap.
func DecodeCIFAR(r io.Reader, size int64, f CIFARFormat) (images []float32, labels []int32, err error) {
	rec := int64(f.RecordSize())
	if size <= 0 || size%rec != 0 {
		return nil, nil, fmt.Errorf("%s: size %d bytes is not a positive multiple of the %d-byte record", f.Name, size, rec)
	}
	n := size / rec
	if n*CIFARImageBytes > MaxIDXBytes {
		return nil, nil, fmt.Errorf("%s: %d records exceed the %d-byte limit", f.Name, n, MaxIDXBytes)
	}
	// Preallocate for a bounded number of records and grow as records are
	// actually read, so a size claim larger than the data costs nothing.
	prealloc := min(n, 1024)
	images = make([]float32, 0, prealloc*CIFARImageBytes)
	labels = make([]int32, 0, prealloc)
	buf := make([]byte, rec)
	for i := int64(0); i < n; i++ {
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, nil, fmt.Errorf("%s: record %d: %w", f.Name, i, truncated(err))
		}
		label := int(buf[f.LabelIndex])
		if label >= f.Classes {
			return nil, nil, fmt.Errorf("%s: record %d has label %d, not below %d classes: not a %s file?", f.Name, i, label, f.Classes, f.Name)
		}
		if f.MaxOther > 0 && int(buf[0]) >= f.MaxOther {
			return nil, nil, fmt.Errorf("%s: record %d has coarse label %d, not below %d: not a %s file?", f.Name, i, buf[0], f.MaxOther, f.Name)
		}
		labels = append(labels, int32(label))
		for _, b := range buf[f.LabelBytes:] {
			images = append(images, float32(b)/255)
		}
	}
	return images, labels, nil
}

// ReadCIFARFile decodes the CIFAR batch file at path. Errors name the path.
func ReadCIFARFile(path string, f CIFARFormat) (images []float32, labels []int32, err error) {
	file, st, err := OpenRegular(path)
	if err != nil {
		return nil, nil, err
	}
	defer file.Close()
	images, labels, err = DecodeCIFAR(bufio.NewReader(file), st.Size(), f)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return images, labels, nil
}

// ParseClassNames parses a CIFAR meta file (batches.meta.txt,
// fine_label_names.txt): one name per line, blank lines ignored. It must name
// exactly want classes.
func ParseClassNames(text string, want int) ([]string, error) {
	var names []string
	for _, line := range strings.Split(text, "\n") {
		if name := strings.TrimSpace(line); name != "" {
			names = append(names, name)
		}
	}
	if len(names) != want {
		return nil, fmt.Errorf("lists %d class names, want %d", len(names), want)
	}
	return names, nil
}
