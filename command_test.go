package webhookverify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/spf13/cobra"
)

// run executes a webhook subcommand with args and returns what it printed.
func run(t *testing.T, cmd *cobra.Command, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestSecretCommand(t *testing.T) {
	out, err := run(t, secretCommand())
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSpace(out)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	if !strings.HasPrefix(s, "whsec_") || err != nil || len(raw) != 32 {
		t.Fatalf("secret %q: want whsec_ and 32 bytes of base64", s)
	}

	out, _ = run(t, secretCommand(), "--format", "hex", "--bytes", "24")
	if b, err := hex.DecodeString(strings.TrimSpace(out)); err != nil || len(b) != 24 {
		t.Fatalf("hex secret %q: want 24 bytes", out)
	}
	if _, err := run(t, secretCommand(), "--bytes", "8"); err == nil {
		t.Fatal("an 8-byte secret was accepted")
	}
}

// TestSignReproducesVectors checks that `caddy webhook sign` makes exactly
// the signatures the providers publish.
func TestSignReproducesVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct{ Vectors []vector }
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	for _, v := range file.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			args := []string{"--preset", v.Preset, "--secret", v.Secret, "--body", v.Body}
			if v.Now != 0 {
				args = append(args, "--timestamp", itoa64(v.Now))
			}
			if id := v.Headers["webhook-id"]; id != "" {
				args = append(args, "--id", id)
			}
			out, err := run(t, signCommand(), args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			got := parseHeaders(out)
			for name, want := range v.Headers {
				if g := got.Get(name); g != want {
					t.Errorf("%s: %q, want the published %q", name, g, want)
				}
			}
		})
	}
}

// TestSignThenVerify signs a delivery for every preset and a generic scheme
// with the sign command, saves it as a raw request and checks it with the
// verify command; a changed body must then be refused.
func TestSignThenVerify(t *testing.T) {
	const at = "1700000000"
	body := `{"webhookTimestamp":1700000000000,"event":"x"}`
	schemes := [][]string{
		{"--preset", "github"}, {"--preset", "gitea"}, {"--preset", "stripe"},
		{"--preset", "slack"}, {"--preset", "shopify"}, {"--preset", "twitch"},
		{"--preset", "standard_webhooks", "--secret-encoding", "raw"},
		{"--preset", "zoom"}, {"--preset", "paddle"}, {"--preset", "linear"},
		{"--preset", "gitlab"}, {"--preset", "square"}, {"--preset", "http_signature"},
		{"--algorithm", "hmac-sha512", "--signature-header", "X-Sig",
			"--signature-encoding", "base64url", "--signed-content",
			"{method} {url} {header.X-Tenant} {id} {timestamp} {body}",
			"--timestamp-header", "X-Time", "--timestamp-format", "rfc3339",
			"--id-header", "X-Id"},
	}
	for _, scheme := range schemes {
		t.Run(strings.Join(scheme[:2], " "), func(t *testing.T) {
			args := append([]string{"--secret", "s3cret", "--timestamp", at, "--body", body,
				"--url", "http://hooks.example/in?x=1", "-H", "X-Tenant: t1"}, scheme...)
			out, err := run(t, signCommand(), args...)
			if err != nil {
				t.Fatalf("sign: %v\n%s", err, out)
			}

			check := func(b, secret string) string {
				dir := t.TempDir()
				reqFile := filepath.Join(dir, "req.http")
				saved := "POST /in?x=1 HTTP/1.1\r\nHost: hooks.example\r\nX-Tenant: t1\r\n" +
					"Content-Length: " + itoa64(int64(len(b))) + "\r\n" +
					strings.ReplaceAll(out, "\n", "\r\n") + "\r\n" + b
				os.WriteFile(reqFile, []byte(saved), 0o600)
				res, _ := run(t, verifyCommand(), append([]string{"--secret", secret,
					"--request", reqFile, "--at", at}, scheme...)...)
				return res
			}
			if res := check(body, "s3cret"); !strings.HasPrefix(res, "verified: key_id=1") {
				t.Fatalf("verify: %s", res)
			}
			res := check(body, "other")
			if !strings.HasPrefix(res, "rejected: invalid_signature (status 401)") {
				t.Fatalf("verify with another secret: %s", res)
			}

			// A shared token covers no body: GitLab's scheme cannot tell.
			want := "rejected: invalid_signature (status 401)"
			switch scheme[1] {
			case "gitlab":
				want = "verified: key_id=1"
			case "http_signature":
				// the signature covers Content-Digest, which no longer matches
				want = "rejected: content_digest_mismatch (status 401)"
			}
			res = check(strings.Replace(body, "x", "y", 1), "s3cret")
			if !strings.HasPrefix(res, want) {
				t.Fatalf("verify of a changed body: %s, want %s", res, want)
			}
		})
	}
}

// TestVerifyWithoutContentLength checks a request saved by hand, with no
// Content-Length: its body is the rest of the file.
func TestVerifyWithoutContentLength(t *testing.T) {
	saved := "POST /github HTTP/1.1\nHost: localhost:8080\n" +
		"X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17\n" +
		"\nHello, World!"
	file := filepath.Join(t.TempDir(), "delivery.http")
	os.WriteFile(file, []byte(saved), 0o600)

	out, err := run(t, verifyCommand(), "--preset", "github", "--secret",
		"It's a Secret to Everybody", "--request", file)
	if err != nil || !strings.HasPrefix(out, "verified: key_id=1") {
		t.Fatalf("verify: %q, %v", out, err)
	}
}

func parseHeaders(out string) http.Header {
	h := http.Header{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, value, _ := strings.Cut(line, ": ")
		h.Add(name, value)
	}
	return h
}

// TestSendCommand posts a signed delivery to a server running the handler.
func TestSendCommand(t *testing.T) {
	h := provisioned(t, &Handler{Preset: "stripe", Secrets: []Secret{{Value: "whsec_x"}}})
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		repl := caddy.NewReplacer()
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			got, _ = io.ReadAll(r.Body)
			w.Write([]byte("taken"))
			return nil
		})
		if err := h.ServeHTTP(w, r, next); err != nil {
			code, _ := statusOf(t, err)
			w.WriteHeader(code)
		}
	}))
	defer srv.Close()

	out, err := run(t, sendCommand(), srv.URL, "--preset", "stripe", "--secret", "whsec_x",
		"--body", `{"id":"evt_1"}`)
	if err != nil || out != "200 OK\ntaken\n" || string(got) != `{"id":"evt_1"}` {
		t.Fatalf("send: %q, %v; upstream got %q", out, err, got)
	}

	out, err = run(t, sendCommand(), srv.URL, "--preset", "stripe", "--secret", "whsec_y",
		"--body", `{"id":"evt_2"}`)
	if !strings.HasPrefix(out, "401 Unauthorized\n\n") || err == nil {
		t.Fatalf("send with a wrong secret: %q, %v; want the 401 and an error", out, err)
	}
}

// TestSignTwilio checks that `caddy webhook sign` reproduces Twilio's
// published form example, and asks for bodySHA256 for a JSON body.
func TestSignTwilio(t *testing.T) {
	form := "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234" +
		"&From=%2B14158675309&To=%2B18005551212"
	out, err := run(t, signCommand(), "--preset", "twilio", "--secret", "12345",
		"--url", "https://mycompany.com/myapp.php?foo=1&bar=2", "--body", form,
		"-H", "Content-Type: application/x-www-form-urlencoded")
	if err != nil || parseHeaders(out).Get("X-Twilio-Signature") != "RSOYDt4T1cUTdK1PDd93/VVr8B8=" {
		t.Fatalf("sign: %v\n%s", err, out)
	}

	_, err = run(t, signCommand(), "--preset", "twilio", "--secret", "12345",
		"--url", "https://mycompany.com/myapp.php", "--body", `{"a":1}`,
		"-H", "Content-Type: application/json")
	if err == nil || !strings.Contains(err.Error(), "bodySHA256") {
		t.Fatalf("JSON body without bodySHA256: error %v", err)
	}
}

// TestSignHTTPSignatureKeyID checks that --kid names the secret of an
// http_signature in its keyid parameter.
func TestSignHTTPSignatureKeyID(t *testing.T) {
	out, err := run(t, signCommand(), "--preset", "http_signature", "--secret", "s3cret",
		"--kid", "partner-1", "--body", "{}", "--url", "http://localhost/signed")
	if err != nil {
		t.Fatalf("sign: %v\n%s", err, out)
	}
	if input := parseHeaders(out).Get("Signature-Input"); !strings.Contains(input,
		`keyid="partner-1"`) {
		t.Fatalf("Signature-Input %q names no keyid partner-1", input)
	}
}
