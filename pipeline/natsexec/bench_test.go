package natsexec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/pipeline"
)

// BenchmarkInstanceLatency times one run of a one-instance pipeline whose
// stage does nothing but write a tiny table: planning, the cache lookup,
// executing and recording. The nats variant runs it on an in-process worker
// over a loopback server, so the difference is the executor's overhead per
// instance: submit, fetch, upload, result, acknowledgement.
//
//	go test ./pipeline/natsexec -run '^$' -bench InstanceLatency
//
// With stores on disk both variants are bound by the local store's fsyncs
// (measured on the shared 2-core machine: local 20.7-25.5 ms, nats
// 18.8-23.5 ms); with TMPDIR on a tmpfs the executor's own cost shows
// (local 2.0-2.9 ms, nats 5.4-5.8 ms).
func BenchmarkInstanceLatency(b *testing.B) {
	dir := b.TempDir()
	file := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(file, []byte("name: empty\nseed: 0\nstages:\n  nap:\n    uses: sleep\n    with: {ms: 0}\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	load := func(seed int) *pipeline.Pipeline {
		p, err := pipeline.Load(file, []string{fmt.Sprintf("seed=%d", seed)}, resolver(dir))
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	b.Run("local", func(b *testing.B) {
		store, err := artifacts.OpenDir(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; b.Loop(); i++ {
			if _, err := load(i).Run(context.Background(), pipeline.Options{Store: store}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("nats", func(b *testing.B) {
		srv := startServer(b)
		startWorker(b, srv.ClientURL(), WorkerConfig{Name: "bench", Cores: 1})
		nc := connect(b, srv.ClientURL())
		store := openStore(b, nc)
		exec, err := NewExecutor(context.Background(), nc, ExecutorConfig{})
		if err != nil {
			b.Fatal(err)
		}
		defer exec.Close()
		for i := 0; b.Loop(); i++ {
			if _, err := load(i).Run(context.Background(), pipeline.Options{Store: store, Executor: exec}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
