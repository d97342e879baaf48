package stages

import (
	"strings"
	"testing"

	"github.com/sglr-pipe/sglr-pipe/artifacts"
)

func TestEnvFilesRoundTrip(t *testing.T) {
	files := &artifacts.Files{}
	files.Add("table.md", []byte("| a |\n"))
	files.Add("curves.svg", []byte("<svg/>"))
	producer := &Env{Instance: "report", OutDir: t.TempDir(), Progress: NopProgress{}}
	if err := producer.WriteFiles("report", files); err != nil {
		t.Fatal(err)
	}
	in := fileInput(t, producer.OutputPath("report"), map[string]string{"noise": "0.2"})
	consumer := &Env{Instance: "publish", Inputs: map[string][]Input{"one": {in}, "many": {in, in}}}
	got, err := consumer.ReadFiles("one")
	if err != nil {
		t.Fatal(err)
	}
	if md, ok := got.File("table.md"); !ok || string(md) != "| a |\n" {
		t.Errorf("read back %q, %v", md, ok)
	}
	all, tags, err := consumer.ReadFileSets("many")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || tags[1]["noise"] != "0.2" {
		t.Errorf("gathered %d file sets with tags %v", len(all), tags)
	}
	// A bad name is refused and leaves no output file behind.
	bad := &artifacts.Files{Names: []string{"../x"}, Data: [][]byte{nil}}
	if err := producer.WriteFiles("bad", bad); err == nil || !strings.Contains(err.Error(), `output "bad"`) {
		t.Errorf("got %v, want an error naming the port", err)
	}
	wrong := &Env{Instance: "publish", Inputs: map[string][]Input{"one": {{Path: producer.OutputPath("bad"), Digest: artifacts.Digest(strings.Repeat("0", 64))}}}}
	if _, err := wrong.ReadFiles("one"); err == nil {
		t.Error("a removed output was read")
	}
}
