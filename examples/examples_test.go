// Package examples holds runnable configurations; this test runs them the way
// the README does, with the custom Caddy binary and the example script.
package examples

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestExampleScript builds cmd/caddy, runs it on examples/Caddyfile and runs
// examples/send.sh twice against it, checking every status it reports.
func TestExampleScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Caddy; skipped in -short mode")
	}
	for _, tool := range []string{"curl", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the example script needs %s: %v", tool, err)
		}
	}
	base := startCaddyfile(t)

	first := runScript(t, "send.sh", base)
	want := []string{
		`github signed: accepted github delivery 72d3162e-cc78-11e3-81ab-4c9367dc0958 [200]`,
		`github replayed: refused: duplicate_delivery [409]`,
		`github forged: refused: invalid_signature [401]`,
		`stripe signed: accepted stripe delivery signed at <n> [200]`,
		`stripe wrong secret: refused: invalid_signature [401]`,
		`stripe ten minutes old: refused: stale_timestamp [401]`,
		`standard signed: accepted delivery msg_<n> with key 2026 [200]`,
		`standard replayed: refused: duplicate_delivery [409]`,
		`standard malformed: refused: malformed_signature [400]`,
		`slack handshake: 3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P [200]`,
		`slack signed: accepted slack request signed at <n> [200]`,
		`slack forged: refused: invalid_signature [401]`,
	}
	compareLines(t, first, want)

	// The GitHub delivery has a fixed signature: the second run is a replay.
	time.Sleep(1100 * time.Millisecond) // a new second, so the timestamped ones differ
	second := runScript(t, "send.sh", base)
	want[0] = `github signed: refused: duplicate_delivery [409]`
	compareLines(t, second, want)
}

// TestSignedExample runs examples/signed.sh, the RFC 9421 requests signed by
// caddy webhook send, twice against examples/Caddyfile: each run signs with
// new nonces, so it is accepted once and then refused as a replay.
func TestSignedExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Caddy; skipped in -short mode")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("the example script needs curl: %v", err)
	}
	bin, err := caddyBin()
	if err != nil {
		t.Fatal(err)
	}
	base := startCaddyfile(t)

	for run := 1; run <= 2; run++ {
		compareLines(t, runScript(t, "signed.sh", base, "CADDY="+bin), []string{
			`rfc9421 signed: accepted signed delivery from partner-1 [200]`,
			`rfc9421 replayed: refused: duplicate_delivery [409]`,
			`rfc9421 wrong secret: refused: invalid_signature [401]`,
			`rfc9421 tampered: refused: content_digest_mismatch [401]`,
			`rfc9421 ten minutes old: refused: stale_timestamp [401]`,
		})
	}
}

// binDir holds the Caddy built for the package's tests.
var binDir string

func TestMain(m *testing.M) {
	var err error
	if binDir, err = os.MkdirTemp("", "webhook-verify-examples"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// caddyBin is the Caddy built from cmd/caddy, once for the package.
var caddyBin = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(binDir, "caddy")
	build := exec.Command("go", "build", "-o", bin, "./cmd/caddy")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building Caddy: %v\n%s", err, out)
	}
	return bin, nil
})

// startExample runs Caddy on config, with the named adapter or none for
// JSON, until the test ends, waits for addr and returns the path of its log.
func startExample(t *testing.T, config, adapter, addr string) string {
	t.Helper()
	bin, err := caddyBin()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	args := []string{"run", "--config", config}
	if adapter != "" {
		args = append(args, "--adapter", adapter)
	}
	caddy := exec.CommandContext(ctx, bin, args...)
	caddy.Dir = ".."
	caddy.Env = append(os.Environ(), "XDG_DATA_HOME="+t.TempDir(),
		"XDG_CONFIG_HOME="+t.TempDir())
	logPath := filepath.Join(t.TempDir(), "caddy.log")
	logs, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	caddy.Stdout, caddy.Stderr = logs, logs
	if err := caddy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); caddy.Wait() })
	waitForPort(t, addr)
	return logPath
}

// startCaddyfile runs a copy of examples/Caddyfile on free ports, since the
// example's own may be in use by the example itself, and returns its URL.
func startCaddyfile(t *testing.T) string {
	t.Helper()
	port, admin := freePort(t), freePort(t)
	config := relocate(t, "Caddyfile", "localhost:8080", "localhost:"+port,
		"localhost:2019", "localhost:"+admin)
	startExample(t, config, "caddyfile", "localhost:"+port)
	return "http://localhost:" + port
}

// relocate copies the example config name to a temporary file with its
// addresses replaced, old and new in pairs, so that a test never depends on
// the example's own ports being free, and returns the copy's path.
func relocate(t *testing.T, name string, pairs ...string) string {
	t.Helper()
	example, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(t.TempDir(), name)
	cfg := strings.NewReplacer(pairs...).Replace(string(example))
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return config
}

// runScript runs an example script with base as its argument and env added
// to the environment, and returns its lines, labels and replies joined by a
// colon and the run of padding collapsed.
func runScript(t *testing.T, script, base string, env ...string) []string {
	t.Helper()
	cmd := exec.Command("sh", script, base)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return collapse(strings.Split(strings.TrimSpace(string(out)), "\n"))
}

var number = regexp.MustCompile(`\d{9,}`)

// compareLines checks got against want, where <n> in want stands for any
// timestamp-sized number.
func compareLines(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("script printed %d lines, want %d:\n%s", len(got), len(want),
			strings.Join(got, "\n"))
	}
	for i := range want {
		if g := number.ReplaceAllString(got[i], "<n>"); g != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, got[i], want[i])
		}
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// waitForPort waits up to 60 seconds for addr to accept connections.
func waitForPort(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("Caddy did not listen on %s within 60s", addr)
}

// TestExampleJSON runs examples/github.json, the JSON form of a GitHub
// route, and sends it the README's signed delivery and a forged one.
func TestExampleJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Caddy; skipped in -short mode")
	}
	port, admin := freePort(t), freePort(t)
	config := relocate(t, "github.json", "127.0.0.1:8083", "127.0.0.1:"+port,
		"localhost:2020", "localhost:"+admin)
	startExample(t, config, "", "127.0.0.1:"+port)

	send := func(body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+port+"/github",
			strings.NewReader(body))
		req.Header.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
		req.Header.Set("X-Hub-Signature-256", "sha256=65cf1e1aeb36f098c67ba0ea5421c7ce"+
			"1f94fd30c73bb51911a847c2e3480f52")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, body := send(`{"zen":"Design for failure.","hook_id":1}`)
	if code != 200 || body != "accepted 72d3162e-cc78-11e3-81ab-4c9367dc0958 with key main" {
		t.Fatalf("signed delivery: %d %q", code, body)
	}
	if code, _ := send(`{"zen":"Design for failure.","hook_id":2}`); code != 401 {
		t.Fatalf("forged delivery: %d, want 401", code)
	}
}
