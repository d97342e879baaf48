package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// minDigestPrefix is the shortest digest prefix accepted as a reference.
const minDigestPrefix = 6

// resolvedRef is what a REF argument names: a run record, or one artifact
// (with the run, instance and port that produced it, when known).
type resolvedRef struct {
	run *artifacts.Run

	digest   artifacts.Digest
	runID    string // the run whose record named the output, when the ref was INSTANCE.PORT
	instance string // producing instance, when the ref named it
	port     string
}

// resolveRef interprets ref against the store:
//
//	latest, latest~N, <run-id>  a run record (also a unique prefix of a run id,
//	                            or of its random part, when no artifact matches)
//	<hex digest or prefix>      an artifact (prefix of at least 6 hex digits, unique)
//	INSTANCE.PORT               an output of the newest run that produced INSTANCE
//	                            ("noisy[noise=0.2].dataset"); INSTANCE may also be a
//	                            stage id with one instance
//
// A ref that names nothing, or several things, is an error saying so.
func resolveRef(store *artifacts.DirStore, ref string) (*resolvedRef, error) {
	if ref == "" {
		return nil, errors.New("empty reference")
	}
	if isLatestSpec(ref) {
		run, err := findRun(store, ref, runFilter{})
		if err != nil {
			return nil, refNotFound(ref, err)
		}
		return &resolvedRef{run: run}, nil
	}
	if isHexString(ref) && len(ref) >= minDigestPrefix {
		d, err := findDigest(store, ref)
		if err == nil {
			return &resolvedRef{digest: d}, nil
		}
		if !namesNothing(err) {
			return nil, err
		}
		// No object: a run id prefix ("20261126") or random part ("3fa9c1").
		if run, runErr := findRun(store, ref, runFilter{}); runErr == nil {
			return &resolvedRef{run: run}, nil
		} else if !namesNothing(runErr) {
			return nil, runErr
		}
		return nil, err
	}
	if dot := strings.LastIndexByte(ref, '.'); dot > 0 && dot < len(ref)-1 {
		return resolveOutputRef(store, ref[:dot], ref[dot+1:])
	}
	run, err := findRun(store, ref, runFilter{})
	switch {
	case err == nil:
		return &resolvedRef{run: run}, nil
	case !namesNothing(err):
		return nil, err
	case isHexString(ref):
		return nil, &refError{msg: fmt.Sprintf("digest prefix %q is too short: give at least %d hex digits", ref, minDigestPrefix)}
	}
	return nil, &refError{msg: fmt.Sprintf("%q is not a run id, \"latest\", an artifact digest or INSTANCE.PORT", ref)}
}

// refError is a reference that names nothing (or too much): a usage mistake.
type refError struct {
	msg       string
	ambiguous bool // it names several things, rather than nothing
}

func (e *refError) Error() string { return e.msg }

// namesNothing reports whether err is a refError saying that a reference
// matched nothing (so that another reading of it may be tried).
func namesNothing(err error) bool {
	var re *refError
	return errors.As(err, &re) && !re.ambiguous
}

// refNotFound turns a store's not-found into a refError.
func refNotFound(ref string, err error) error {
	if errors.Is(err, artifacts.ErrNotFound) {
		return &refError{msg: fmt.Sprintf("%s: %v", ref, err)}
	}
	return err
}

// findDigest returns the one object whose digest starts with prefix.
func findDigest(store *artifacts.DirStore, prefix string) (artifacts.Digest, error) {
	prefix = strings.ToLower(prefix)
	if len(prefix) == 64 {
		d := artifacts.Digest(prefix)
		if store.Has(d) {
			return d, nil
		}
		return "", &refError{msg: fmt.Sprintf("no object %s in store %s", prefix, store.Root())}
	}
	all, err := store.ListObjects()
	if err != nil {
		return "", err
	}
	var matches []artifacts.Digest
	for _, d := range all {
		if strings.HasPrefix(string(d), prefix) {
			matches = append(matches, d)
		}
	}
	switch len(matches) {
	case 0:
		return "", &refError{msg: fmt.Sprintf("no object with digest prefix %s in store %s", prefix, store.Root())}
	case 1:
		return matches[0], nil
	default:
		shown := make([]string, 0, 5)
		for i, d := range matches {
			if i == 5 {
				shown = append(shown, "…")
				break
			}
			shown = append(shown, string(d))
		}
		return "", &refError{ambiguous: true, msg: fmt.Sprintf("digest prefix %s is ambiguous: %d objects match (%s); give more digits",
			prefix, len(matches), strings.Join(shown, ", "))}
	}
}

// resolveOutputRef finds output port of instance in the newest run that
// produced it: a run that holds the instance but did not produce it (it was
// skipped, failed or cancelled there, as after `run FILE noisy` for the
// train instances) is passed over for an older one. The runs are read
// newest first and the search stops at the first that produced it.
// INSTANCE may be a stage id; it must have one instance in the newest run
// that has any instance of it, or the ref is ambiguous.
func resolveOutputRef(store *artifacts.DirStore, instance, port string) (*resolvedRef, error) {
	ref := instance + "." + port
	runs, err := store.RunsNewestFirst()
	if err != nil {
		return nil, err
	}
	var latest *artifacts.Run     // the newest readable run, for the error message
	var unproduced *artifacts.Run // the newest run that holds the instance without outputs
	var status string
	for e := range runs {
		if e.Err != nil {
			continue // a record that cannot be read names no output; cache verify reports it
		}
		if latest == nil {
			latest = e.Run
		}
		found, err := findInstance(e.Run, instance)
		if err != nil {
			return nil, err
		}
		if found == nil {
			continue
		}
		if len(found.Outputs) == 0 {
			if unproduced == nil {
				unproduced, status = e.Run, found.Status
			}
			continue
		}
		return outputOf(e.Run, found, port)
	}
	switch {
	case latest == nil:
		return nil, &refError{msg: fmt.Sprintf("%s: no runs recorded in store %s", ref, store.Root())}
	case unproduced != nil:
		return nil, &refError{msg: fmt.Sprintf("no run produced %s: in run %s it was %s, and no earlier run has it", instance, unproduced.ID, status)}
	}
	return nil, &refError{msg: fmt.Sprintf("no run has an instance %q (the latest run %s has: %s)", instance, latest.ID, instanceIDs(latest))}
}

// findInstance looks instance up in run by instance id, then as a stage id
// with exactly one instance; nil when the run has neither, an error when
// the stage has several instances there.
func findInstance(run *artifacts.Run, instance string) (*artifacts.RunInstance, error) {
	var byDecl []*artifacts.RunInstance
	for i := range run.Instances {
		ri := &run.Instances[i]
		if ri.ID == instance {
			return ri, nil
		}
		if ri.Stage == instance {
			byDecl = append(byDecl, ri)
		}
	}
	switch len(byDecl) {
	case 0:
		return nil, nil
	case 1:
		return byDecl[0], nil
	}
	ids := make([]string, len(byDecl))
	for i, ri := range byDecl {
		ids[i] = ri.ID
	}
	return nil, &refError{ambiguous: true, msg: fmt.Sprintf("stage %q has %d instances in run %s; name one: %s", instance, len(byDecl), run.ID, strings.Join(ids, ", "))}
}

// outputOf is the digest of port among found's outputs in run.
func outputOf(run *artifacts.Run, found *artifacts.RunInstance, port string) (*resolvedRef, error) {
	d, ok := found.Outputs[port]
	if !ok {
		ports := slices.Sorted(maps.Keys(found.Outputs))
		return nil, &refError{msg: fmt.Sprintf("%s has no output %q in run %s (outputs: %s)", found.ID, port, run.ID, strings.Join(ports, ", "))}
	}
	return &resolvedRef{digest: d, runID: run.ID, instance: found.ID, port: port}, nil
}

// instanceIDs lists a run's instance ids, comma-separated.
func instanceIDs(run *artifacts.Run) string {
	ids := make([]string, len(run.Instances))
	for i, ri := range run.Instances {
		ids[i] = ri.ID
	}
	return strings.Join(ids, ", ")
}

// isHexString reports whether s is non-empty and all hex digits.
func isHexString(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
