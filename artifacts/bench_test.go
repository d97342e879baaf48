package artifacts

import (
	"io"
	"os"
	"testing"
	"time"
)

// BenchmarkStoreDataset60000x784 measures an MNIST-sized dataset (60000
// images of 1×28×28 float32, clean labels and flipped flags) going through
// the store: write = encode streamed into Put (hash, fsync, rename), read =
// what a stage does with an input: read the file once, hash it against its
// digest while decoding and validating the same bytes (DecodeObject). Throughputs are in MB/s of artifact bytes.
func BenchmarkStoreDataset60000x784(b *testing.B) {
	const n = 60000
	d := benchDataset(n)
	s, err := OpenDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}

	var writeTime, readTime time.Duration
	var bytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(WriteDataset(pw, d)) }()
		digest, err := s.Put(pr)
		if err != nil {
			b.Fatal(err)
		}
		writeTime += time.Since(start)

		start = time.Now()
		path, err := s.Path(digest)
		if err != nil {
			b.Fatal(err)
		}
		got, err := DecodeObject(path, digest, ReadDataset) // as a stage reads its inputs
		if err != nil {
			b.Fatal(err)
		}
		readTime += time.Since(start)
		if got.Len() != n {
			b.Fatalf("read %d samples", got.Len())
		}
		st, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		bytes = st.Size()
	}
	mb := float64(bytes) / 1e6 * float64(b.N)
	b.ReportMetric(mb/writeTime.Seconds(), "write_MB/s")
	b.ReportMetric(mb/readTime.Seconds(), "read_MB/s")
	b.ReportMetric(float64(bytes)/1e6, "artifact_MB")
}

// BenchmarkReadDataset60000x784 compares reading an MNIST-sized dataset
// object unchecked (open + decode + validate, as before reads were verified)
// with the checked read every stage input now gets (DecodeObject: read once,
// hash and decode the same bytes). Both in one run, so the figures compare.
func BenchmarkReadDataset60000x784(b *testing.B) {
	s, err := OpenDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	digest, err := putBenchDataset(s, 60000)
	if err != nil {
		b.Fatal(err)
	}
	path, err := s.Path(digest)
	if err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	reads := map[string]func() (*Dataset, error){
		"unchecked": func() (*Dataset, error) { return ReadDatasetFile(path) },
		"checked":   func() (*Dataset, error) { return DecodeObject(path, digest, ReadDataset) },
	}
	for _, name := range []string{"unchecked", "checked"} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(st.Size())
			for i := 0; i < b.N; i++ {
				d, err := reads[name]()
				if err != nil {
					b.Fatal(err)
				}
				if d.Len() != 60000 {
					b.Fatalf("read %d samples", d.Len())
				}
			}
		})
	}
}

// benchDataset is a dataset of n images of 1×28×28 with clean labels and
// flipped flags, as the benchmarks store and read it.
func benchDataset(n int) *Dataset {
	const size = 784
	d := &Dataset{
		Shape:       []int{1, 28, 28},
		ClassNames:  []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
		IDs:         make([]int64, n),
		Labels:      make([]int32, n),
		Images:      make([]float32, n*size),
		CleanLabels: make([]int32, n),
		Flipped:     make([]bool, n),
	}
	for i := 0; i < n; i++ {
		d.IDs[i] = int64(i)
		d.Labels[i] = int32(i % 10)
		d.CleanLabels[i] = int32(i % 10)
	}
	for i := range d.Images {
		d.Images[i] = float32(i%256) / 255
	}
	return d
}

// putBenchDataset stores benchDataset(n).
func putBenchDataset(s *DirStore, n int) (Digest, error) {
	d := benchDataset(n)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(WriteDataset(pw, d)) }()
	return s.Put(pr)
}
