package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
	"github.com/sglr-pipe/sglr-pipe/artifacts/natsstore"
	"github.com/sglr-pipe/sglr-pipe/pipeline/natsexec"
	stageexec "github.com/sglr-pipe/sglr-pipe/stages/exec"
)

// Environment variables that supply secrets without putting them on a
// command line (where ps shows them).
const (
	natsTokenEnv    = "SGLR_NATS_TOKEN"
	natsPasswordEnv = "SGLR_NATS_PASSWORD"
)

// natsFlags are the connection flags that run, worker and anything else
// talking to NATS share: the URL, authentication and TLS.
type natsFlags struct {
	url      string
	token    string
	user     string
	password string
	nkey     string
	creds    string
	tlsCA    string
	tlsCert  string
	tlsKey   string
}

// register adds the flags to fl.
func (f *natsFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.url, "nats", "", "NATS server URL, e.g. nats://host:4222 (several separated by commas)")
	fl.StringVar(&f.token, "nats-token", "", "NATS authentication token (or $"+natsTokenEnv+")")
	fl.StringVar(&f.user, "nats-user", "", "NATS user name (with --nats-password)")
	fl.StringVar(&f.password, "nats-password", "", "NATS password (or $"+natsPasswordEnv+")")
	fl.StringVar(&f.nkey, "nats-nkey", "", "file holding the NATS nkey seed to authenticate with")
	fl.StringVar(&f.creds, "nats-creds", "", "NATS credentials file (JWT and nkey seed)")
	fl.StringVar(&f.tlsCA, "tls-ca", "", "CA certificate to verify the NATS server with")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "client certificate for a NATS server that verifies clients (with --tls-key)")
	fl.StringVar(&f.tlsKey, "tls-key", "", "private key of --tls-cert")
}

// connectOptions builds the natsexec connection options, taking secrets
// from the environment when their flags are not given.
func (f *natsFlags) connectOptions(name string, logf func(string, ...any)) natsexec.ConnectOptions {
	o := natsexec.ConnectOptions{
		URL: f.url, Name: name, Token: f.token, User: f.user, Password: f.password,
		NkeySeedFile: f.nkey, CredsFile: f.creds, TLSCA: f.tlsCA, TLSCert: f.tlsCert, TLSKey: f.tlsKey, Log: logf,
	}
	if o.Token == "" && o.User == "" && o.NkeySeedFile == "" && o.CredsFile == "" {
		o.Token = os.Getenv(natsTokenEnv)
	}
	if o.User != "" && o.Password == "" {
		o.Password = os.Getenv(natsPasswordEnv)
	}
	return o
}

// connect connects to NATS and binds JetStream; a bad combination of flags
// is a usage error, an unreachable server a failure.
func (f *natsFlags) connect(cmd *cobra.Command, name string, logf func(string, ...any)) (*nats.Conn, jetstream.JetStream, error) {
	if f.url == "" {
		return nil, nil, usageErrorf(cmd, "--nats URL is required (start a server with 'sglr-pipe serve' if you have none)")
	}
	o := f.connectOptions(name, logf)
	if o.User != "" && o.Password == "" {
		return nil, nil, usageErrorf(cmd, "--nats-user needs --nats-password (or $%s)", natsPasswordEnv)
	}
	nc, err := natsexec.Connect(o)
	if err != nil {
		return nil, nil, failed(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, failed(err)
	}
	return nc, js, nil
}

// workerFlags are the flags of `worker`.
type workerFlags struct {
	nats       natsFlags
	name       string
	cores      int
	labels     []string
	allowExec  []string
	cache      string
	ackWait    time.Duration
	maxDeliver int
}

// newWorkerCommand runs a worker that takes stage instances from NATS.
func newWorkerCommand() *cobra.Command {
	f := &workerFlags{}
	cmd := &cobra.Command{
		Use:   "worker --nats URL",
		Short: "Run stage instances that coordinators submit through NATS (see run --executor nats)",
		Long: `worker takes stage instances from the NATS JetStream work queue that
'sglr-pipe run --executor nats' fills, fetches their inputs by digest into its
cache, runs them and uploads the outputs. Start one per machine (or several);
stop it with Ctrl-C: running instances go back to the queue for another worker.

A worker runs only the built-in stages of its own version. External exec:
stages run only when --allow-exec names the executables or directories they
may come from, so a pipeline file cannot run arbitrary commands on workers.
Instances can require labels (run --require-label train=gpu); a worker takes
them only if started with those labels (--label gpu).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runWorker(cmd, f) },
	}
	fl := cmd.Flags()
	f.nats.register(fl)
	fl.StringVar(&f.name, "name", "", "worker name shown to coordinators (default: host-pid)")
	fl.IntVar(&f.cores, "cores", runtime.NumCPU(), "core budget for concurrent instances")
	fl.StringArrayVar(&f.labels, "label", nil, "a label this worker offers, e.g. gpu (repeatable)")
	fl.StringArrayVar(&f.allowExec, "allow-exec", nil, "an executable or directory that exec: stages may be run from (repeatable; default: none)")
	fl.StringVar(&f.cache, "cache", "", "local store for fetched and produced artifacts (default: <user cache dir>/sglr-pipe/worker)")
	fl.DurationVar(&f.ackWait, "ack-wait", 30*time.Second, "redeliver an instance to another worker when its worker is silent this long")
	fl.IntVar(&f.maxDeliver, "max-deliver", 10, "give an instance up (failed) after this many deliveries")
	return cmd
}

// runWorker is the body of `worker`.
func runWorker(cmd *cobra.Command, f *workerFlags) error {
	if f.cores < 1 {
		return usageErrorf(cmd, "--cores must be at least 1, got %d", f.cores)
	}
	if f.ackWait < 100*time.Millisecond {
		return usageErrorf(cmd, "--ack-wait must be at least 100ms, got %s", f.ackWait)
	}
	if f.maxDeliver < 1 {
		return usageErrorf(cmd, "--max-deliver must be at least 1, got %d", f.maxDeliver)
	}
	if _, err := natsexec.CheckLabels(f.labels); err != nil {
		return usageErrorf(cmd, "--label: %v", err)
	}
	for _, p := range f.allowExec {
		if _, err := os.Stat(p); err != nil {
			return usageErrorf(cmd, "--allow-exec %s: %v", p, err)
		}
	}
	name := f.name
	if name == "" {
		host, _ := os.Hostname()
		name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	logf := newLogger(cmd.ErrOrStderr(), name)
	cacheDir := f.cache
	if cacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return usageErrorf(cmd, "no user cache directory (%v): give --cache DIR", err)
		}
		cacheDir = filepath.Join(base, "sglr-pipe", "worker")
	}
	mirror, err := artifacts.OpenDir(cacheDir)
	if err != nil {
		return err
	}

	ctx, stop := interruptContext(cmd.Context(), cmd.ErrOrStderr())
	defer stop()
	nc, js, err := f.nats.connect(cmd, "sglr-pipe worker "+name, logf)
	if err != nil {
		return err
	}
	defer nc.Close()
	store, err := natsstore.Open(ctx, js, mirror, natsstore.Config{})
	if err != nil {
		return failed(err)
	}
	w, err := natsexec.NewWorker(ctx, nc, store, natsexec.WorkerConfig{
		Name: name, Labels: f.labels, Cores: f.cores, AllowExec: f.allowExec, OpenExec: stageexec.Open,
		AckWait: f.ackWait, MaxDeliver: f.maxDeliver, Log: logf,
	})
	if err != nil {
		return failed(err)
	}
	execPolicy := "exec: stages refused"
	if len(f.allowExec) > 0 {
		execPolicy = "exec: stages allowed from " + strings.Join(f.allowExec, ", ")
	}
	labels := "no labels"
	if len(f.labels) > 0 {
		labels = "labels " + strings.Join(f.labels, ", ")
	}
	logf("ready on %s: cores %d, %s, %s, cache %s", nc.ConnectedUrlRedacted(), f.cores, labels, execPolicy, mirror.Root())
	if err := w.Run(ctx); err != nil {
		return failed(err)
	}
	logf("stopped")
	return nil
}

// newLogger returns a printf that writes "[15:04:05] name: message" lines,
// one call at a time.
func newLogger(w io.Writer, name string) func(string, ...any) {
	var mu sync.Mutex
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "[%s] %s: %s\n", time.Now().Format("15:04:05"), name, fmt.Sprintf(format, args...))
	}
}
