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
// Open + decode + validate. Throughputs are in MB/s of artifact bytes.
func BenchmarkStoreDataset60000x784(b *testing.B) {
	const n, size = 60000, 784
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
		f, err := s.Open(digest)
		if err != nil {
			b.Fatal(err)
		}
		got, err := ReadDataset(f)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		readTime += time.Since(start)
		if got.Len() != n {
			b.Fatalf("read %d samples", got.Len())
		}
		path, _ := s.Path(digest)
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
