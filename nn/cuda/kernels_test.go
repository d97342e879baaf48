package cuda

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// These tests lint the hand-written PTX without a GPU: entry names and
// parameter types against the launch wrappers' kernel table, registers
// used against those declared, branch targets against labels. They do not
// show the driver accepts it, nor that it computes the references.

var (
	entryRE = regexp.MustCompile(`(?s)\.visible \.entry (\w+)\((.*?)\)\s*\{(.*?)\n\}`)
	paramRE = regexp.MustCompile(`\.param \.(\w+) (\w+)`)
	regRE   = regexp.MustCompile(`\.reg \.\w+ %(\w+)<(\d+)>;`)
	useRE   = regexp.MustCompile(`%([a-z]+)(\d+)\b`)
	braRE   = regexp.MustCompile(`\bbra (\w+);`)
	labelRE = regexp.MustCompile(`(?m)^(\w+):`)
)

func TestPTXHeader(t *testing.T) {
	for _, want := range []string{".version 7.0\n", ".target sm_75\n", ".address_size 64\n"} {
		if !strings.Contains(kernelPTX, want) {
			t.Errorf("kernelPTX lacks %q", want)
		}
	}
	if strings.ContainsRune(kernelPTX, 0) {
		t.Error("kernelPTX holds a NUL: the driver would stop reading there")
	}
}

func TestPTXEntries(t *testing.T) {
	entries := entryRE.FindAllStringSubmatch(kernelPTX, -1)
	var names []string
	labels := map[string]string{}
	for _, e := range entries {
		name, params, body := e[1], e[2], e[3]
		names = append(names, name)
		i := slices.IndexFunc(kernels, func(k kernel) bool { return k.name == name })
		if i < 0 {
			t.Errorf("entry %s is not in the kernels table", name)
			continue
		}
		var types, pnames []string
		for _, p := range paramRE.FindAllStringSubmatch(params, -1) {
			types = append(types, p[1])
			pnames = append(pnames, p[2])
		}
		if !slices.Equal(types, kernels[i].params) {
			t.Errorf("%s: PTX parameters %v, launch table %v", name, types, kernels[i].params)
		}
		for _, p := range pnames {
			if !strings.Contains(body, "["+p+"]") {
				t.Errorf("%s: parameter %s never loaded", name, p)
			}
		}
		declared := map[string]int{}
		for _, r := range regRE.FindAllStringSubmatch(body, -1) {
			n, _ := strconv.Atoi(r[2])
			declared[r[1]] = n
		}
		for _, u := range useRE.FindAllStringSubmatch(body, -1) {
			prefix, idx := u[1], u[2]
			if prefix == "tid" || prefix == "ntid" || prefix == "ctaid" {
				continue
			}
			n, ok := declared[prefix]
			k, _ := strconv.Atoi(idx)
			if !ok || k >= n {
				t.Errorf("%s: register %%%s%s used, declared %%%s<%d>", name, prefix, idx, prefix, n)
			}
		}
		own := map[string]bool{}
		for _, l := range labelRE.FindAllStringSubmatch(body, -1) {
			if other, dup := labels[l[1]]; dup {
				t.Errorf("label %s in %s and %s", l[1], other, name)
			}
			labels[l[1]] = name
			own[l[1]] = true
		}
		for _, b := range braRE.FindAllStringSubmatch(body, -1) {
			if !own[b[1]] {
				t.Errorf("%s: branch to %s, not a label of this entry", name, b[1])
			}
		}
		if !strings.Contains(body, "ret;") {
			t.Errorf("%s: no ret", name)
		}
	}
	var want []string
	for _, k := range kernels {
		want = append(want, k.name)
	}
	if !slices.Equal(names, want) {
		t.Errorf("PTX entries %v, kernels table %v", names, want)
	}
}
