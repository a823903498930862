package launcher

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// loadWithin loads path, failing the test instead of hanging when loading
// does not return within a minute (a FIFO that blocks, merges that spin).
// The minute is a watchdog, not a timing target: a correct load takes
// milliseconds.
func loadWithin(t *testing.T, path string) (*Config, error) {
	t.Helper()
	type result struct {
		c   *Config
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := loadConfig(path)
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		return r.c, r.err
	case <-time.After(time.Minute):
		t.Fatalf("loading %s did not return within a minute", path)
		return nil, nil
	}
}

// projectWith writes cgdev.yaml and the named extra files into a fresh
// project directory, changes into it and returns the config's path.
func projectWith(t *testing.T, yaml string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "cgdev.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	return path
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("loaded; want an error containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q\ndoes not contain %q", err, p)
		}
	}
}

// TestEnvFileLongLine: a 64 KiB value (a certificate, a JSON blob) and every
// line after it reach the service (issue 9, item 2: bufio.Scanner's 64 KiB
// limit dropped them silently).
func TestEnvFileLongLine(t *testing.T) {
	big := strings.Repeat("x", 100<<10)
	path := projectWith(t, "services:\n  a:\n    command: x\n    env_file: .env\n",
		map[string]string{".env": "A=1\nBIG=" + big + "\nC=3\n"})
	c, err := loadWithin(t, path)
	if err != nil {
		t.Fatal(err)
	}
	env := c.Service("a").Env
	if len(env) != 3 || env[0] != "A=1" || env[1] != "BIG="+big || env[2] != "C=3" {
		t.Errorf("env has %d entries (%.40q…); want A, BIG (100 KiB) and C", len(env), env)
	}
}

// TestProcfileLongLine: a long command works, and a line past the bound is
// refused naming the file and line, not a bare "bufio.Scanner: token too long".
func TestProcfileLongLine(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	long := "echo " + strings.Repeat("y", 100<<10)
	os.WriteFile("Procfile", []byte("web: run\nlong: "+long+"\nlast: run\n"), 0o644)
	c, err := loadWithin(t, "Procfile")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Services) != 3 || c.Service("long").Command != long {
		t.Errorf("services %v", c.Names())
	}
	os.WriteFile("Procfile", []byte("web: run\nhuge: echo "+strings.Repeat("y", 200<<10)+"\n"), 0o644)
	_, err = loadWithin(t, "Procfile")
	wantErr(t, err, "Procfile:2: huge: the command is", "131072")
}

// TestEnvFileLineBound: a line past maxLine is refused with file and line.
func TestEnvFileLineBound(t *testing.T) {
	path := projectWith(t, "services:\n  a:\n    command: x\n    env_file: .env\n",
		map[string]string{".env": "A=1\nB=" + strings.Repeat("x", maxLine) + "\n"})
	_, err := loadWithin(t, path)
	wantErr(t, err, ".env:2:", "longer than the 1 MiB")
}

// TestEnvTooLongForExec: one environment string the kernel would refuse at
// exec (MAX_ARG_STRLEN) is refused at load, with the file and line.
func TestEnvTooLongForExec(t *testing.T) {
	path := projectWith(t, "services:\n  a:\n    command: x\n    env_file: .env\n",
		map[string]string{".env": "A=1\nBIG=" + strings.Repeat("x", 200<<10) + "\n"})
	_, err := loadWithin(t, path)
	wantErr(t, err, ".env:2:", "BIG", "131072")
}

// TestMergeKeyBomb: nine levels of merge keys each merging the level below
// nine times (issue 9, item 7: 9^9 expansions, start spun for minutes) load
// at once: each anchor is expanded once.
func TestMergeKeyBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("x-0: &a0 {grace: 1s}\n")
	for i := 1; i <= 9; i++ {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 9), ", ")
		fmt.Fprintf(&b, "x-%d: &a%d {<<: [%s]}\n", i, i, refs)
	}
	b.WriteString("services:\n  a:\n    <<: *a9\n    command: run\n")
	path := projectWith(t, b.String(), nil)
	c, err := loadWithin(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Service("a").Grace != time.Second {
		t.Errorf("grace %s; want 1s from the innermost anchor", c.Service("a").Grace)
	}
}

// TestMergeExpansionBounded: merges that would expand past the bound are
// refused with the file and line even when every anchor is expanded once
// (many distinct keys, merged many times).
func TestMergeExpansionBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("x-keys: &k {")
	for i := range 2000 {
		fmt.Fprintf(&b, "A%d: v, ", i)
	}
	b.WriteString("}\nservices:\n")
	for i := range 100 {
		fmt.Fprintf(&b, "  s%d:\n    command: run\n    env: {<<: [*k, *k, *k]}\n", i)
	}
	path := projectWith(t, b.String(), nil)
	_, err := loadWithin(t, path)
	wantErr(t, err, "cgdev.yaml:", "merge keys expand to more than")
}

// TestSpecialFilesRefused: a FIFO, a device or a directory where cgdev reads
// a file is refused at once, naming the file (issue 9, item 9: a FIFO as
// env_file hung start).
func TestSpecialFilesRefused(t *testing.T) {
	for _, tc := range []struct {
		name, make, want string
	}{
		{"fifo env_file", "fifo", "a named pipe (FIFO)"},
		{"device env_file", "/dev/zero", "a device"},
		{"directory env_file", "dir", "a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			envFile := tc.make
			path := projectWith(t, "services:\n  a:\n    command: x\n    env_file: "+envFile+"\n", nil)
			switch tc.make {
			case "fifo":
				if err := unix.Mkfifo(filepath.Join(filepath.Dir(path), "fifo"), 0o644); err != nil {
					t.Fatal(err)
				}
			case "dir":
				os.Mkdir(filepath.Join(filepath.Dir(path), "dir"), 0o755)
			}
			_, err := loadWithin(t, path)
			wantErr(t, err, "cgdev.yaml:4: services.a.env_file:", envFile, tc.want)
		})
	}
	t.Run("fifo project file", func(t *testing.T) {
		dir := t.TempDir()
		t.Chdir(dir)
		for _, name := range []string{"cgdev.yaml", "Procfile"} {
			if err := unix.Mkfifo(name, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := loadWithin(t, name)
			wantErr(t, err, name+":", "a named pipe (FIFO)")
		}
	})
}

// TestHugeFilesRefused: a project or env file past its bound is refused
// before it is read into memory.
func TestHugeFilesRefused(t *testing.T) {
	path := projectWith(t, "services:\n  a:\n    command: x\n    env_file: .env\n", nil)
	if err := os.Truncate(path, maxProjectFile+1); err != nil {
		t.Fatal(err)
	}
	_, err := loadWithin(t, path)
	wantErr(t, err, "cgdev.yaml:", "more than")
	path = projectWith(t, "services:\n  a:\n    command: x\n    env_file: .env\n", map[string]string{".env": ""})
	if err := os.Truncate(filepath.Join(filepath.Dir(path), ".env"), maxEnvFile+1); err != nil {
		t.Fatal(err)
	}
	_, err = loadWithin(t, path)
	wantErr(t, err, "cgdev.yaml:4: services.a.env_file:", ".env", "more than")
}

// TestNULRefused: a NUL byte, which no command line, environment string or
// path can carry, is refused at load with the file and line, so that no
// service starts (other services used to start and this one to fail).
func TestNULRefused(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"command", "services:\n  a:\n    command: \"run\\0x\"\n", "cgdev.yaml:3: services.a.command: contains a NUL byte"},
		{"env mapping", "services:\n  a:\n    command: run\n    env: {A: \"1\\0\"}\n", "cgdev.yaml:4: services.a.env.A: contains a NUL byte"},
		{"env list", "services:\n  a:\n    command: run\n    env: [\"A=1\\0\"]\n", "cgdev.yaml:4: services.a.env[0]: contains a NUL byte"},
		{"env key", "services:\n  a:\n    command: run\n    env: {\"A\\0\": x}\n", "cgdev.yaml:4:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := projectWith(t, tc.yaml, nil)
			_, err := loadWithin(t, path)
			wantErr(t, err, tc.want)
		})
	}
	t.Run("env_file", func(t *testing.T) {
		path := projectWith(t, "services:\n  a:\n    command: x\n    env_file: .env\n", map[string]string{".env": "A=1\nB=x\x00y\n"})
		_, err := loadWithin(t, path)
		wantErr(t, err, ".env:2:", "NUL")
	})
	t.Run("Procfile", func(t *testing.T) {
		t.Chdir(t.TempDir())
		os.WriteFile("Procfile", []byte("a: run\nb: run\x00x\n"), 0o644)
		_, err := loadWithin(t, "Procfile")
		wantErr(t, err, "Procfile:2:", "NUL")
	})
}

// TestSecondDocumentRefused: a second YAML document was silently ignored.
func TestSecondDocumentRefused(t *testing.T) {
	path := projectWith(t, "services:\n  a: {command: run}\n---\nservices:\n  b: {command: run}\n", nil)
	_, err := loadWithin(t, path)
	wantErr(t, err, "cgdev.yaml:4:", "second YAML document")
	path = projectWith(t, "---\nservices:\n  a: {command: run}\n...\n", nil)
	if _, err := loadWithin(t, path); err != nil {
		t.Errorf("one document with markers: %v", err)
	}
}

// TestDirOutsideProjectWarns: a service directory outside the project is
// allowed (a sibling checkout) but warned about, naming the field and line:
// stop's orphan sweep looks for pattern matches only inside the project.
func TestDirOutsideProjectWarns(t *testing.T) {
	path := projectWith(t, "services:\n  a:\n    command: run\n    dir: /etc\n  b:\n    command: run\n    dir: ../../..\n  c:\n    command: run\n    dir: .\n", nil)
	c, err := loadWithin(t, path)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(c.Warnings, "\n")
	for _, want := range []string{"cgdev.yaml:4: services.a.dir: /etc is outside the project", "cgdev.yaml:7: services.b.dir:"} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings:\n%s\nwant one containing %q", got, want)
		}
	}
	if len(c.Warnings) != 2 {
		t.Errorf("%d warnings; want 2 (dir: . is inside)", len(c.Warnings))
	}
}
