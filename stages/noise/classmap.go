package noise

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Default asymmetric maps, by class name. CIFAR-10 follows the co-teaching and
// self-adaptive-training papers (truck->automobile, bird->airplane,
// deer->horse, cat<->dog); MNIST follows Patrini et al. 2017 (2->7, 3->8,
// 5<->6, 7->1); for Fashion-MNIST we move classes to their most similar
// neighbour: T-shirt/top<->Shirt, Pullover->Coat, Sneaker->Sandal.
var (
	cifar10Classes      = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}
	fashionMNISTClasses = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
	mnistClasses        = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

	defaultMaps = []struct {
		classes []string
		pairs   map[string]string
	}{
		{cifar10Classes, map[string]string{"truck": "automobile", "bird": "airplane", "deer": "horse", "cat": "dog", "dog": "cat"}},
		{fashionMNISTClasses, map[string]string{"T-shirt/top": "Shirt", "Shirt": "T-shirt/top", "Pullover": "Coat", "Sneaker": "Sandal"}},
		{mnistClasses, map[string]string{"2": "7", "3": "8", "5": "6", "6": "5", "7": "1"}},
	}
)

// DefaultAsymmetricMap returns the documented default map (source class index
// -> target class index) for CIFAR-10, Fashion-MNIST or MNIST, recognised by
// their class names; other class lists have no default.
func DefaultAsymmetricMap(classNames []string) (map[int]int, error) {
	for _, d := range defaultMaps {
		if !slices.Equal(d.classes, classNames) {
			continue
		}
		m := make(map[int]int, len(d.pairs))
		for src, dst := range d.pairs {
			m[slices.Index(classNames, src)] = slices.Index(classNames, dst)
		}
		return m, nil
	}
	return nil, fmt.Errorf("no default map for classes %v: set map: (source class -> target class)", classNames)
}

// ParseClassMap resolves a map parameter whose keys and values name classes
// by name or by index into class indices. A class mapped to itself or a name
// the dataset lacks is an error.
func ParseClassMap(raw map[string]any, classNames []string) (map[int]int, error) {
	m := make(map[int]int, len(raw))
	keys := make([]string, 0, len(raw))
	for key := range raw {
		keys = append(keys, key)
	}
	slices.Sort(keys) // report the same error first every time
	for _, key := range keys {
		src, err := resolveClass(key, classNames)
		if err != nil {
			return nil, fmt.Errorf("map key %q: %w", key, err)
		}
		dst, err := resolveClass(raw[key], classNames)
		if err != nil {
			return nil, fmt.Errorf("map %q: target %v: %w", key, raw[key], err)
		}
		if src == dst {
			return nil, fmt.Errorf("map %q sends class %q to itself", key, classNames[src])
		}
		if _, dup := m[src]; dup {
			return nil, fmt.Errorf("map key %q names class %q twice", key, classNames[src])
		}
		m[src] = dst
	}
	return m, nil
}

// resolveClass turns a class name or index (string, int or integral float) into an index.
func resolveClass(v any, classNames []string) (int, error) {
	switch x := v.(type) {
	case string:
		if i := slices.Index(classNames, x); i >= 0 {
			return i, nil
		}
		if i, err := strconv.Atoi(strings.TrimSpace(x)); err == nil {
			return checkIndex(i, classNames)
		}
		return 0, fmt.Errorf("no class named %q among %v", x, classNames)
	case int64:
		return checkIndex(int(x), classNames)
	case int:
		return checkIndex(x, classNames)
	case float64:
		if x != math.Trunc(x) {
			return 0, fmt.Errorf("class index %v is not an integer", x)
		}
		return checkIndex(int(x), classNames)
	default:
		return 0, fmt.Errorf("%v (%T) is neither a class name nor an index", v, v)
	}
}

func checkIndex(i int, classNames []string) (int, error) {
	if i < 0 || i >= len(classNames) {
		return 0, fmt.Errorf("class index %d outside 0..%d", i, len(classNames)-1)
	}
	return i, nil
}

// formatMap renders a map as "src->dst,..." by class name, sorted by source index.
func formatMap(m map[int]int, classNames []string) string {
	srcs := make([]int, 0, len(m))
	for s := range m {
		srcs = append(srcs, s)
	}
	slices.Sort(srcs)
	parts := make([]string, len(srcs))
	for i, s := range srcs {
		parts[i] = classNames[s] + "->" + classNames[m[s]]
	}
	return strings.Join(parts, ",")
}
