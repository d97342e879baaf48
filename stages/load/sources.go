package load

import (
	"bufio"
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/sglr-pipe/sglr-pipe/stages/load/internal/datafile"
)

// DebianFashionMNISTDir is where Debian's dataset-fashion-mnist package
// installs the Fashion-MNIST IDX files; the default path for fashion-mnist.
const DebianFashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// TestIDOffset is added to the source index of every test-split sample so that
// train and test sample ids never collide.
const TestIDOffset = 1_000_000_000

// FashionMNISTClasses are the Fashion-MNIST class names, in label order.
var FashionMNISTClasses = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// MNISTClasses are the MNIST class names: the digits.
var MNISTClasses = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

// CIFAR10Classes are the standard CIFAR-10 class names, used when the
// directory has no batches.meta.txt.
var CIFAR10Classes = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// CIFAR100Classes are the standard CIFAR-100 fine class names, used when the
// directory has no fine_label_names.txt.
var CIFAR100Classes = []string{
	"apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
	"bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
	"chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
	"dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
	"lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
	"mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
	"plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
	"rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
	"squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
	"train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
}

// miniFiles holds the embedded fashion-mnist-mini subset, written by
// `go generate` (see internal/minigen) from the Debian package's files.
//
//go:embed mini/*.gz
var miniFiles embed.FS

// split is one decoded source split (train or test), sample-major.
type split struct {
	images []float32
	labels []int32
}

// source is a whole decoded dataset before any subsetting.
type source struct {
	shape      []int
	classNames []string
	train      split
	test       split
	origin     string // where the data came from, for reports and Meta
}

// size returns the number of samples in s.
func (s split) size() int { return len(s.labels) }

// idxNames are the IDX file stems of the train and test splits.
var idxNames = struct{ trainImages, trainLabels, testImages, testLabels string }{
	"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
}

// loadIDXDir reads the four MNIST-layout IDX files (plain or .gz) in dir.
// hint says what to install or pass when a file is missing.
func loadIDXDir(name, dir string, classes []string, hint string) (*source, error) {
	open := func(stem string) (*datafile.IDXArray, error) {
		plain := filepath.Join(dir, stem)
		for _, p := range []string{plain, plain + ".gz"} {
			arr, err := datafile.ReadIDXFile(p)
			if err == nil {
				return arr, nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
		return nil, fmt.Errorf("%s: %s.gz not found (nor unzipped %s): %s", name, plain, stem, hint)
	}
	return decodeIDXSource(name, dir, classes, open)
}

// loadMini decodes the embedded fashion-mnist-mini subset.
func loadMini() (*source, error) {
	open := func(stem string) (*datafile.IDXArray, error) {
		data, err := miniFiles.ReadFile("mini/" + stem + ".gz")
		if err != nil {
			return nil, fmt.Errorf("fashion-mnist-mini: embedded %s.gz: %w", stem, err)
		}
		arr, err := datafile.DecodeIDXBytesOrGzip(bufio.NewReader(bytes.NewReader(data)), int64(len(data)))
		if err != nil {
			return nil, fmt.Errorf("fashion-mnist-mini: embedded %s.gz: %w", stem, err)
		}
		return arr, nil
	}
	return decodeIDXSource("fashion-mnist-mini", "embedded", FashionMNISTClasses, open)
}

// decodeIDXSource reads the four IDX arrays through open and checks that
// they fit together.
func decodeIDXSource(name, origin string, classes []string, open func(stem string) (*datafile.IDXArray, error)) (*source, error) {
	src := &source{classNames: classes, origin: origin}
	for _, part := range []struct {
		images, labels string
		dst            *split
	}{
		{idxNames.trainImages, idxNames.trainLabels, &src.train},
		{idxNames.testImages, idxNames.testLabels, &src.test},
	} {
		imgArr, err := open(part.images)
		if err != nil {
			return nil, err
		}
		images, shape, err := datafile.IDXImages(imgArr)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", name, part.images, err)
		}
		lblArr, err := open(part.labels)
		if err != nil {
			return nil, err
		}
		labels, err := datafile.IDXLabels(lblArr, len(classes))
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", name, part.labels, err)
		}
		if imgArr.Dims[0] != len(labels) {
			return nil, fmt.Errorf("%s: %s has %d images but %s has %d labels", name, part.images, imgArr.Dims[0], part.labels, len(labels))
		}
		if src.shape != nil && !equalInts(src.shape, shape) {
			return nil, fmt.Errorf("%s: %s images are %v, train images are %v", name, part.images, shape, src.shape)
		}
		src.shape = shape
		*part.dst = split{images: images, labels: labels}
	}
	return src, nil
}

// maxMetaBytes bounds a CIFAR class-names file (CIFAR-100's is 1 KB).
const maxMetaBytes = 1 << 20

// loadCIFAR reads the CIFAR-10 or CIFAR-100 binary batches in dir.
func loadCIFAR(dir string, format datafile.CIFARFormat) (*source, error) {
	var trainFiles []string
	var testFile, metaFile string
	var names []string
	switch format.Name {
	case "cifar10":
		for i := 1; i <= 5; i++ {
			trainFiles = append(trainFiles, fmt.Sprintf("data_batch_%d.bin", i))
		}
		testFile, metaFile, names = "test_batch.bin", "batches.meta.txt", CIFAR10Classes
	default:
		trainFiles = []string{"train.bin"}
		testFile, metaFile, names = "test.bin", "fine_label_names.txt", CIFAR100Classes
	}
	src := &source{shape: datafile.CIFARShape, classNames: names, origin: dir}
	if text, err := datafile.ReadRegularFile(filepath.Join(dir, metaFile), maxMetaBytes); err == nil {
		parsed, err := datafile.ParseClassNames(string(text), format.Classes)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", format.Name, filepath.Join(dir, metaFile), err)
		}
		src.classNames = parsed
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", format.Name, err)
	}
	read := func(file string, dst *split) error {
		p := filepath.Join(dir, file)
		images, labels, err := datafile.ReadCIFARFile(p, format)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: %s not found: set path: to the directory of the %s binary version (%s and %s)", format.Name, p, format.Name, strings.Join(trainFiles, ", "), testFile)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", format.Name, err)
		}
		dst.images = append(dst.images, images...)
		dst.labels = append(dst.labels, labels...)
		return nil
	}
	for _, f := range trainFiles {
		if err := read(f, &src.train); err != nil {
			return nil, err
		}
	}
	if err := read(testFile, &src.test); err != nil {
		return nil, err
	}
	return src, nil
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
