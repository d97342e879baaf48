package checkpoint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type header struct{ Epoch int }
type body struct{ Data []float32 }

const magic = "test-checkpoint/1\n"

func TestRoundTripAndDamage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.ckpt")
	if err := Write(path, magic, header{7}, body{[]float32{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	var h header
	var b body
	if err := Read(path, magic, &h, &b); err != nil || h.Epoch != 7 || len(b.Data) != 3 || b.Data[2] != 3 {
		t.Fatalf("read back %+v %+v: %v", h, b, err)
	}
	var first header
	if err := ReadFirst(path, magic, &first); err != nil || first.Epoch != 7 {
		t.Fatalf("ReadFirst: %+v, %v", first, err)
	}
	data, _ := os.ReadFile(path)
	for _, tc := range []struct {
		name, want string
		bytes      []byte
	}{
		{"flipped", "corrupt", func() []byte { c := append([]byte{}, data...); c[len(magic)+3] ^= 0x10; return c }()},
		{"cut", "corrupt", data[:len(data)-1]},
		{"tiny", "cut or not", data[:5]},
		{"other magic", "cut or not", append([]byte("other-format/1\n"), data[len(magic):]...)},
	} {
		if err := os.WriteFile(path, tc.bytes, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := Read(path, magic, &h, &b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}
