package examples

import (
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestPublicKeyExample runs Caddy on a copy of examples/pubkey.caddyfile on
// free ports and runs examples/pubkey.sh against it twice: each run makes a
// new key pair, which Caddy must follow without a restart, and signs new
// Standard Webhooks deliveries with the committed demo key. It checks every
// line the script prints, and that the script stopped its key set server.
func TestPublicKeyExample(t *testing.T) {
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

	// The example's own ports may be in use by the example itself.
	addr, jwksAddr := "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t)
	config := relocate(t, "pubkey.caddyfile", "127.0.0.1:8081", addr,
		"127.0.0.1:8082", jwksAddr)
	logPath := startExample(t, config, "caddyfile", addr)
	env := append(os.Environ(), "XDG_DATA_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir(),
		"CADDY="+bin, "JWKS_ADDR="+jwksAddr)

	kids := map[string]bool{}
	for run := 1; run <= 2; run++ {
		script := exec.Command("sh", "pubkey.sh", "http://"+addr)
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
			`standard signed: accepted msg_<n> signed by demo [200]`,
			`standard replay: refused: duplicate_delivery [409]`,
			`standard forged: refused: invalid_signature [401]`,
		})
		if c, err := net.Dial("tcp", jwksAddr); err == nil {
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
