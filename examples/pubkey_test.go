package examples

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPublicKeyExample builds cmd/caddy, runs it on examples/pubkey.caddyfile
// and runs examples/pubkey.sh against it twice: each run makes a new key
// pair, which Caddy must follow without a restart. It checks every line the
// script prints, and that the script stopped its key set server.
func TestPublicKeyExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Caddy; skipped in -short mode")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("the example script needs curl: %v", err)
	}
	for _, addr := range []string{"127.0.0.1:8081", "127.0.0.1:8082"} {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Fatalf("%s is already in use; the public-key example listens there", addr)
		}
	}

	bin := filepath.Join(t.TempDir(), "caddy")
	build := exec.Command("go", "build", "-o", bin, "./cmd/caddy")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building Caddy: %v\n%s", err, out)
	}
	env := append(os.Environ(), "XDG_DATA_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir(),
		"CADDY="+bin)

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	caddy := exec.CommandContext(ctx, bin, "run", "--config", "examples/pubkey.caddyfile")
	caddy.Dir = ".."
	caddy.Env = env
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
	waitForPort(t, "127.0.0.1:8081")

	kids := map[string]bool{}
	for run := 1; run <= 2; run++ {
		script := exec.Command("sh", "pubkey.sh")
		script.Env = env
		out, err := script.CombinedOutput()
		if err != nil {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("run %d of pubkey.sh: %v\n%s\ncaddy log:\n%s", run, err, out, log)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		kid, ok := strings.CutPrefix(lines[0], "partner key: ")
		if !ok || len(kid) != 43 || kids[kid] {
			t.Fatalf("run %d: first line %q, want a new 43-character thumbprint key ID",
				run, lines[0])
		}
		kids[kid] = true
		for i := range lines {
			lines[i] = strings.ReplaceAll(lines[i], kid, "<kid>")
		}
		compareLines(t, collapse(lines), []string{
			`partner key: <kid>`,
			`signed: accepted delivery signed by <kid> [200]`,
			`tampered: refused: invalid_signature [401]`,
			`forged: refused: invalid_signature [401]`,
			`unknown key: refused: unknown_key [401]`,
		})
		if c, err := net.Dial("tcp", "127.0.0.1:8082"); err == nil {
			c.Close()
			t.Fatalf("run %d: the key set server still listens after the script ended", run)
		}
	}
}

// labelPad is the run of spaces between a label and a reply.
var labelPad = regexp.MustCompile(`\s{2,}`)

// collapse joins each line's label and reply with a colon, as runScript does.
func collapse(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = labelPad.ReplaceAllString(strings.TrimSpace(l), ": ")
	}
	return out
}
