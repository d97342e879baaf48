package main

import (
	"bufio"
	"bytes"
	"context"
	bigendian "encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeIDXDir writes a small MNIST-layout directory of plain IDX files
// (30 train and 20 test images of 4x3 pixels) and returns it.
func writeIDXDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	idx := func(dims []uint32, payload []byte) []byte {
		var b bytes.Buffer
		b.Write([]byte{0, 0, 8, byte(len(dims))})
		for _, d := range dims {
			_ = bigendian.Write(&b, bigendian.BigEndian, d)
		}
		b.Write(payload)
		return b.Bytes()
	}
	split := func(n int) (images, labels []byte) {
		for i := 0; i < n; i++ {
			labels = append(labels, byte(i%10))
			images = append(images, bytes.Repeat([]byte{byte(i)}, 4*3)...)
		}
		return images, labels
	}
	trImg, trLbl := split(30)
	teImg, teLbl := split(20)
	for name, data := range map[string][]byte{
		"train-images-idx3-ubyte": idx([]uint32{30, 4, 3}, trImg),
		"train-labels-idx1-ubyte": idx([]uint32{30}, trLbl),
		"t10k-images-idx3-ubyte":  idx([]uint32{20, 4, 3}, teImg),
		"t10k-labels-idx1-ubyte":  idx([]uint32{20}, teLbl),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// loadPipelineFor is a pipeline that loads the MNIST-layout directory data.
func loadPipelineFor(data string) string {
	return "name: blocked\nstages:\n  data:\n    uses: load\n    with:\n      dataset: mnist\n      path: " + data + "\n"
}

// TestLoadRefusesFIFO: `load` from a directory whose idx file is a FIFO
// used to block in open() forever. It must fail at once, naming the file.
func TestLoadRefusesFIFO(t *testing.T) {
	for _, name := range []string{"train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"} {
		t.Run(name, func(t *testing.T) {
			data := writeIDXDir(t)
			fifo := filepath.Join(data, name)
			if err := os.Remove(fifo); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(fifo, 0o644); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
			dir, file := writePipeline(t, loadPipelineFor(data))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, "run", file)
			cmd.Dir, cmd.Env = dir, testEnv()
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("run blocked for 30s on the FIFO %s\n%s", fifo, out)
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitFailed {
				t.Fatalf("run: %v, want exit %d\n%s", err, exitFailed, out)
			}
			if want := fifo + " is a named pipe (FIFO)"; !strings.Contains(string(out), want) || !strings.Contains(string(out), "FAILED data") {
				t.Errorf("output does not say %q for stage data:\n%s", want, out)
			}
		})
	}
}

// holdWriteLease takes a write lease on path for the rest of the test: any
// other process's open() of it then blocks (up to the kernel's
// lease-break-time, 45 s by default) — a regular file that stalls like one on
// a hung network file system. Each attempt to open it sends this process
// SIGIO, which arrives on the returned channel.
func holdWriteLease(t *testing.T, path string) <-chan os.Signal {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	opened := make(chan os.Signal, 1)
	signal.Notify(opened, syscall.SIGIO)
	if _, err := fcntl(f.Fd(), syscall.F_SETLEASE, syscall.F_WRLCK); err != nil {
		signal.Stop(opened)
		f.Close()
		t.Skipf("cannot take a file lease here (%v): no way to block an open()", err)
	}
	t.Cleanup(func() {
		signal.Stop(opened)
		f.Close()
	})
	return opened
}

func fcntl(fd uintptr, cmd, arg int) (int, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, uintptr(cmd), uintptr(arg))
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// TestFirstSignalExitsBlockedRun runs a `load` whose open() of its data
// blocks in the kernel, where no context reaches it, and signals the process
// once: it must still exit, with 130, within the interrupt grace, and leave
// the store valid.
func TestFirstSignalExitsBlockedRun(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			data := writeIDXDir(t)
			opened := holdWriteLease(t, filepath.Join(data, "train-images-idx3-ubyte"))
			dir, file := writePipeline(t, loadPipelineFor(data))
			cmd := exec.Command(binary, "run", "--json", file)
			cmd.Dir, cmd.Env = dir, testEnv()
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
				}
				_, _ = io.Copy(io.Discard, stdout)
			}()
			exited := make(chan error, 1)
			waited := make(chan struct{})
			go func() {
				defer close(waited)
				exited <- cmd.Wait()
			}()
			defer func() {
				_ = cmd.Process.Kill()
				<-waited
			}()

			select {
			case <-opened: // the stage is now inside open(), waiting on the lease
			case err := <-exited:
				t.Fatalf("run ended before it opened its data: %v\n%s", err, stderr.String())
			case <-time.After(20 * time.Second):
				t.Fatalf("the load never opened %s\n%s", data, stderr.String())
			}
			time.Sleep(200 * time.Millisecond)
			start := time.Now()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			limit := interruptGrace + 5*time.Second
			select {
			case err = <-exited:
			case <-time.After(limit):
				t.Fatalf("still running %s after %s, blocked in open()\nstderr: %s", limit, sig, stderr.String())
			}
			took := time.Since(start)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
				t.Fatalf("run after %s: %v, want exit %d\nstderr: %s", sig, err, exitInterrupted, stderr.String())
			}
			if took < interruptGrace-time.Second {
				t.Errorf("exited %s after the signal, before the %s grace: was it blocked at all?", took, interruptGrace)
			}
			if !strings.Contains(stderr.String(), "exiting now") {
				t.Errorf("stderr does not say it gave up waiting:\n%s", stderr.String())
			}
			r := mustSucceed(t, dir, "cache", "verify")
			if !strings.Contains(r.stdout, "store OK") {
				t.Errorf("verify after the forced exit:\n%s", r.stdout)
			}
		})
	}
}
