package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

// minDigestPrefix is the shortest digest prefix accepted as a reference.
const minDigestPrefix = 6

// resolvedRef is what a REF argument names: a run record, or one artifact
// (with the instance and port that produced it, when known).
type resolvedRef struct {
	run *artifacts.Run

	digest   artifacts.Digest
	instance string // producing instance, when the ref named it
	port     string
}

// resolveRef interprets ref against the store:
//
//	latest, <run-id>        a run record
//	<hex digest or prefix>  an artifact (prefix of at least 6 hex digits, unique)
//	INSTANCE.PORT           an output of the latest run ("noisy[noise=0.2].dataset");
//	                        INSTANCE may also be a stage id with one instance
//
// A ref that names nothing, or several things, is an error saying so.
func resolveRef(store *artifacts.DirStore, ref string) (*resolvedRef, error) {
	if ref == "" {
		return nil, errors.New("empty reference")
	}
	if ref == "latest" {
		run, err := store.GetRun("latest")
		if err != nil {
			return nil, refNotFound(ref, err)
		}
		return &resolvedRef{run: run}, nil
	}
	runs, err := store.ListRuns()
	if err != nil {
		return nil, err
	}
	for _, id := range runs {
		if id == ref {
			run, err := store.GetRun(id)
			if err != nil {
				return nil, err
			}
			return &resolvedRef{run: run}, nil
		}
	}
	if isHexString(ref) && len(ref) >= minDigestPrefix {
		d, err := findDigest(store, ref)
		if err != nil {
			return nil, err
		}
		return &resolvedRef{digest: d}, nil
	}
	if dot := strings.LastIndexByte(ref, '.'); dot > 0 && dot < len(ref)-1 {
		return resolveOutputRef(store, ref[:dot], ref[dot+1:])
	}
	if isHexString(ref) {
		return nil, &refError{fmt.Sprintf("digest prefix %q is too short: give at least %d hex digits", ref, minDigestPrefix)}
	}
	return nil, &refError{fmt.Sprintf("%q is not a run id, \"latest\", an artifact digest or INSTANCE.PORT", ref)}
}

// refError is a reference that names nothing (or too much): a usage mistake.
type refError struct{ msg string }

func (e *refError) Error() string { return e.msg }

// refNotFound turns a store's not-found into a refError.
func refNotFound(ref string, err error) error {
	if errors.Is(err, artifacts.ErrNotFound) {
		return &refError{fmt.Sprintf("%s: %v", ref, err)}
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
		return "", &refError{fmt.Sprintf("no object %s in store %s", prefix, store.Root())}
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
		return "", &refError{fmt.Sprintf("no object with digest prefix %s in store %s", prefix, store.Root())}
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
		return "", &refError{fmt.Sprintf("digest prefix %s is ambiguous: %d objects match (%s); give more digits",
			prefix, len(matches), strings.Join(shown, ", "))}
	}
}

// resolveOutputRef finds output port of instance in the latest run.
func resolveOutputRef(store *artifacts.DirStore, instance, port string) (*resolvedRef, error) {
	run, err := store.GetRun("latest")
	if err != nil {
		return nil, refNotFound(instance+"."+port, err)
	}
	var byDecl []*artifacts.RunInstance
	var found *artifacts.RunInstance
	for i := range run.Instances {
		ri := &run.Instances[i]
		if ri.ID == instance {
			found = ri
			break
		}
		if ri.Stage == instance {
			byDecl = append(byDecl, ri)
		}
	}
	if found == nil {
		switch len(byDecl) {
		case 0:
			return nil, &refError{fmt.Sprintf("latest run %s has no instance %q (instances: %s)", run.ID, instance, instanceIDs(run))}
		case 1:
			found = byDecl[0]
		default:
			ids := make([]string, len(byDecl))
			for i, ri := range byDecl {
				ids[i] = ri.ID
			}
			return nil, &refError{fmt.Sprintf("stage %q has %d instances in run %s; name one: %s", instance, len(byDecl), run.ID, strings.Join(ids, ", "))}
		}
	}
	d, ok := found.Outputs[port]
	if !ok {
		ports := make([]string, 0, len(found.Outputs))
		for p := range found.Outputs {
			ports = append(ports, p)
		}
		if len(ports) == 0 {
			return nil, &refError{fmt.Sprintf("%s has no outputs in run %s (status %s)", found.ID, run.ID, found.Status)}
		}
		return nil, &refError{fmt.Sprintf("%s has no output %q in run %s (outputs: %s)", found.ID, port, run.ID, strings.Join(sortedStrings(ports), ", "))}
	}
	return &resolvedRef{digest: d, instance: found.ID, port: port}, nil
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
