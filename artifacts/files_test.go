package artifacts

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func sampleFiles() *Files {
	return &Files{
		Names: []string{"table.md", "plots/curves.png", "empty.txt"},
		Data:  [][]byte{[]byte("| a |\n"), {0x89, 'P', 'N', 'G', 0}, {}},
		Meta:  map[string]string{"title": "Table B.4"},
	}
}

func encodeFiles(t testing.TB, f *Files) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteFiles(&buf, f); err != nil {
		t.Fatalf("WriteFiles: %v", err)
	}
	return buf.Bytes()
}

func TestFilesRoundTripSortedAndDeterministic(t *testing.T) {
	f := sampleFiles()
	data := encodeFiles(t, f)
	got, err := ReadFiles(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	want := &Files{
		Names: []string{"empty.txt", "plots/curves.png", "table.md"},
		Data:  [][]byte{{}, {0x89, 'P', 'N', 'G', 0}, []byte("| a |\n")},
		Meta:  map[string]string{"title": "Table B.4"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read back %+v, want %+v", got, want)
	}
	// The same files added in another order encode to the same bytes.
	shuffled := &Files{Meta: f.Meta}
	for _, i := range []int{2, 0, 1} {
		shuffled.Add(f.Names[i], f.Data[i])
	}
	if !bytes.Equal(encodeFiles(t, shuffled), data) {
		t.Error("the same files in another order encode to different bytes")
	}
	if b, ok := got.File("table.md"); !ok || string(b) != "| a |\n" {
		t.Errorf("File(table.md) = %q, %v", b, ok)
	}
	if _, ok := got.File("missing"); ok {
		t.Error("File found a missing name")
	}
	empty, err := ReadFiles(bytes.NewReader(encodeFiles(t, &Files{})))
	if err != nil || empty.Len() != 0 {
		t.Errorf("empty files: %v, %d files", err, empty.Len())
	}
}

func TestFilesRejectBadNames(t *testing.T) {
	tests := []struct {
		name  string
		names []string
		want  string
	}{
		{"empty", []string{""}, "empty"},
		{"absolute", []string{"/etc/passwd"}, "absolute"},
		{"parent", []string{"../x.png"}, `".."`},
		{"inner parent", []string{"a/../../x"}, `".."`},
		{"dot", []string{"."}, "clean"},
		{"unclean", []string{"a//b"}, "clean"},
		{"trailing slash", []string{"a/"}, "clean"},
		{"dot element", []string{"./a"}, "clean"},
		{"backslash", []string{`a\b`}, "backslash"},
		{"drive", []string{"C:x"}, "colon"},
		{"control", []string{"a\nb"}, "control"},
		{"utf8", []string{"a\xffb"}, "UTF-8"},
		{"long", []string{strings.Repeat("a", MaxFileNameLen+1)}, "more than"},
		{"duplicate", []string{"a.md", "a.md"}, "twice"},
		{"file and dir", []string{"plots", "plots/a.png"}, "directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &Files{Names: tt.names, Data: make([][]byte, len(tt.names))}
			err := WriteFiles(&bytes.Buffer{}, f)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("WriteFiles(%q) = %v, want an error containing %q", tt.names, err, tt.want)
			}
		})
	}
	if err := WriteFiles(&bytes.Buffer{}, &Files{Names: []string{"a"}}); err == nil {
		t.Error("a name without data was written")
	}
	for _, ok := range []string{"table.md", "plots/reliability-AT+SGLR best.png", "a/b/c", "..hidden", "x..y"} {
		if err := CheckFileName(ok); err != nil {
			t.Errorf("CheckFileName(%q) = %v, want nil", ok, err)
		}
	}
}

func TestReadFilesRejectsOtherKindsAndBadNames(t *testing.T) {
	if _, err := ReadFiles(bytes.NewReader(encodeTable(t, sampleTable()))); !errors.Is(err, ErrCorrupt) {
		t.Errorf("reading a table as files: %v, want ErrCorrupt", err)
	}
	// A file written by hand with a bad name is rejected when read.
	var buf bytes.Buffer
	if err := writeIPC(&buf, KindFiles, filesFields(), filesColumns([]string{"../evil"}, [][]byte{{1}}), 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFiles(bytes.NewReader(buf.Bytes())); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "..") {
		t.Errorf("reading a bad name: %v, want ErrCorrupt naming it", err)
	}
}

func FuzzReadFiles(f *testing.F) {
	f.Add(encodeFiles(f, sampleFiles()))
	f.Add(encodeFiles(f, &Files{}))
	f.Add(encodeTable(f, sampleTable()))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs, err := ReadFiles(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := ReadFiles(bytes.NewReader(encodeFiles(t, fs)))
		if err != nil || !reflect.DeepEqual(again, fs) {
			t.Fatalf("re-encoded files differ: %v", err)
		}
	})
}
