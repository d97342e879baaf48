// Package natsexec spreads the stage instances of a run over many machines
// through NATS JetStream.
//
// The coordinator (`sglr-pipe run --executor nats`) plans and schedules as
// with the local executor; its Executor publishes each ready instance as a
// task message on a JetStream work-queue stream and waits for the result.
// Workers (`sglr-pipe worker`) pull tasks, fetch inputs by digest from the
// shared object store (artifacts/natsstore), run the stage, upload the
// outputs and publish the result; the coordinator records the action in the
// shared action cache, so a later run anywhere finds it cached.
//
// Subjects and streams:
//
//	sglr.task.<labels>          work queue (stream SGLR_TASKS); <labels> is "_" or the required labels joined by "_"
//	sglr.result.<run>.<task>    results (stream SGLR_RESULTS, kept a day), also read live
//	sglr.progress.<run>.<task>  progress of running tasks (plain NATS, best effort)
//	sglr.cancel.<run>.<task>    the coordinator gave up on a task (plain NATS)
//
// Workers share one durable pull consumer per label set they can serve and
// prefer the most specific set, so a task that needs a label is never
// starved by plain tasks on the only workers that have it. A worker keeps a
// running task alive with in-progress acks; if it dies, the task is
// redelivered to another worker once the ack deadline passes.
package natsexec

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sglr-pipe/sglr-pipe/artifacts/natsstore"
)

// Stream names.
const (
	TaskStream   = "SGLR_TASKS"
	ResultStream = "SGLR_RESULTS"
)

// Subject prefixes (see the package documentation).
const (
	taskSubjects     = "sglr.task."
	resultSubjects   = "sglr.result."
	progressSubjects = "sglr.progress."
	cancelSubjects   = "sglr.cancel."
)

// ResultRetention is how long results stay in their stream, so that a
// coordinator that lost its connection can still collect them.
const ResultRetention = 24 * time.Hour

// MaxWorkerLabels bounds the labels of one worker: it serves every subset
// of them, one consumer each.
const MaxWorkerLabels = 8

// Setup creates the task and result streams when they do not exist yet.
// Coordinators and workers both call it, so either may start first.
func Setup(ctx context.Context, js jetstream.JetStream) error {
	configs := []jetstream.StreamConfig{
		{
			Name: TaskStream, Description: "sglr-pipe stage instances waiting for a worker",
			Subjects: []string{taskSubjects + ">"}, Retention: jetstream.WorkQueuePolicy,
			Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute,
		},
		{
			Name: ResultStream, Description: "sglr-pipe results of stage instances run by workers",
			Subjects: []string{resultSubjects + ">"}, Retention: jetstream.LimitsPolicy,
			Storage: jetstream.FileStorage, MaxAge: ResultRetention,
		},
	}
	for _, cfg := range configs {
		err := retryNATS(ctx, time.Minute, func(ctx context.Context) error {
			_, err := js.Stream(ctx, cfg.Name)
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				_, err = js.CreateStream(ctx, cfg)
				if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // created meanwhile by another process
					err = nil
				}
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// labelPattern is what a label may look like: it becomes a subject token
// and part of a consumer name.
var labelPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// CheckLabels checks that every label is lowercase letters, digits and
// inner dashes (e.g. "gpu", "big-mem") and returns them sorted, without duplicates.
func CheckLabels(labels []string) ([]string, error) {
	out := make([]string, 0, len(labels))
	for _, l := range labels {
		if !labelPattern.MatchString(l) {
			return nil, fmt.Errorf("label %q: want lowercase letters, digits and inner dashes (e.g. gpu, big-mem)", l)
		}
		out = append(out, l)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// laneName names a set of labels (sorted, checked): "_" for none.
func laneName(labels []string) string {
	if len(labels) == 0 {
		return "_"
	}
	return strings.Join(labels, "_")
}

// taskSubject is the subject of tasks that require labels.
func taskSubject(labels []string) string { return taskSubjects + laneName(labels) }

// ConnectOptions say how to reach and authenticate to NATS. At most one of
// Token, User/Password, NkeySeedFile and CredsFile may be set.
type ConnectOptions struct {
	URL          string // e.g. nats://host:4222, tls://host:4222; several separated by commas
	Name         string // client name the server shows
	Token        string
	User         string
	Password     string
	NkeySeedFile string // file holding an nkey seed (SU...)
	CredsFile    string // a .creds file (JWT and nkey seed)
	TLSCA        string // CA certificate(s) to verify the server with
	TLSCert      string // client certificate, with TLSKey, for servers that verify clients
	TLSKey       string
	// Log, when set, is told of disconnections and reconnections.
	Log func(format string, args ...any)
}

// Connect opens a NATS connection that reconnects forever: a coordinator or
// worker rides out a server restart. The first connection must succeed.
func Connect(o ConnectOptions) (*nats.Conn, error) {
	if o.URL == "" {
		return nil, errors.New("no NATS URL (--nats nats://host:4222)")
	}
	auth := 0
	for _, set := range []bool{o.Token != "", o.User != "" || o.Password != "", o.NkeySeedFile != "", o.CredsFile != ""} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		return nil, errors.New("give one of a token, a user and password, an nkey seed or a credentials file, not several")
	}
	if (o.User == "") != (o.Password == "") {
		return nil, errors.New("a NATS user needs a password and a password needs a user")
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, errors.New("a TLS client certificate needs its key and a key needs its certificate")
	}
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(10 * time.Second),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				logf("lost the connection to NATS: %v (reconnecting)", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { logf("reconnected to NATS at %s", nc.ConnectedUrlRedacted()) }),
	}
	switch {
	case o.Token != "":
		opts = append(opts, nats.Token(o.Token))
	case o.User != "":
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	case o.NkeySeedFile != "":
		opt, err := nats.NkeyOptionFromSeed(o.NkeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nkey seed %s: %w", o.NkeySeedFile, err)
		}
		opts = append(opts, opt)
	case o.CredsFile != "":
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if o.TLSCert != "" {
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", o.URL, err)
	}
	return nc, nil
}

// retryNATS calls fn until it succeeds, fails for a reason other than a
// lost connection, or budget has passed; each try gets a few seconds.
func retryNATS(ctx context.Context, budget time.Duration, fn func(context.Context) error) error {
	deadline := time.Now().Add(budget)
	wait := 50 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := fn(actx)
		cancel()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case !natsstore.Transient(err) || time.Now().Add(wait).After(deadline):
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}
