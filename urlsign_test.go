package webhookverify

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// urlVector is one entry of testdata/urlsign_vectors.json.
type urlVector struct {
	Name        string `json:"name"`
	Preset      string `json:"preset"`
	Secret      string `json:"secret"`
	URL         string `json:"url"`
	ContentType string `json:"content_type"`
	Body        string `json:"body"`
	Header      string `json:"header"`
	Signature   string `json:"signature"`
}

// sendURL sends a signed POST to rawURL through h, with external_origin
// left to the URL's own scheme and host, and returns the handler error.
func sendURL(h *Handler, v urlVector, signature string) error {
	req := httptest.NewRequest(http.MethodPost, v.URL, strings.NewReader(v.Body))
	req.Header.Set("Content-Type", v.ContentType)
	req.Header.Set(v.Header, signature)
	repl := caddy.NewReplacer()
	req = req.WithContext(context.WithValue(req.Context(), caddy.ReplacerCtxKey, repl))
	return h.ServeHTTP(httptest.NewRecorder(), req, &recorder{})
}

// TestURLSigningVectors checks the twilio and square presets against the
// providers' published examples, and that changing any signed part fails.
func TestURLSigningVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "urlsign_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vectors []urlVector
	if err := json.Unmarshal(raw, &vectors); err != nil {
		t.Fatal(err)
	}
	for _, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			h := provisioned(t, &Handler{Preset: v.Preset, Secrets: []Secret{{Value: v.Secret}},
				DisableReplay: true})
			if status, rsn := statusOf(t, sendURL(h, v, v.Signature)); status != 0 {
				t.Fatalf("published example refused: %d %s", status, rsn)
			}

			changed := v
			changed.Body = v.Body + "x"
			status, rsn := statusOf(t, sendURL(h, changed, v.Signature))
			want := "invalid_signature"
			if strings.Contains(v.URL, "bodySHA256") {
				want = "content_digest_mismatch"
			}
			if status != http.StatusUnauthorized || rsn != want {
				t.Errorf("changed body: %d %s, want 401 %s", status, rsn, want)
			}

			moved := v
			moved.URL = strings.Replace(v.URL, "https://", "http://", 1)
			if status, rsn := statusOf(t, sendURL(h, moved, v.Signature)); status != 401 ||
				rsn != "invalid_signature" {
				t.Errorf("other URL: %d %s, want 401 invalid_signature", status, rsn)
			}
		})
	}
}

// TestTwilioUnboundBody refuses a body that neither form parameters nor a
// bodySHA256 parameter bind to the signature.
func TestTwilioUnboundBody(t *testing.T) {
	h := provisioned(t, &Handler{Preset: "twilio", Secrets: []Secret{{Value: "12345"}},
		DisableReplay: true})
	v := urlVector{URL: "https://mycompany.com/myapp.php?foo=1&bar=2",
		ContentType: "application/json", Body: `{"a":1}`, Header: "X-Twilio-Signature"}
	// the signature of the URL alone, which covers no body
	status, rsn := statusOf(t, sendURL(h, v, "AAAAAAAAAAAAAAAAAAAAAAAAAAA="))
	if status != http.StatusUnauthorized || rsn != "content_digest_mismatch" {
		t.Fatalf("got %d %s, want 401 content_digest_mismatch", status, rsn)
	}
}

// TestExternalOriginURL checks that external_origin replaces the scheme and
// host of the signed URL.
func TestExternalOriginURL(t *testing.T) {
	raw, _ := os.ReadFile(filepath.Join("testdata", "urlsign_vectors.json"))
	var vectors []urlVector
	json.Unmarshal(raw, &vectors)
	v := vectors[len(vectors)-1]
	h := provisioned(t, &Handler{Preset: "square", Secrets: []Secret{{Value: v.Secret}},
		DisableReplay: true, ExternalOrigin: "https://webhook.site"})
	v.URL = strings.Replace(v.URL, "https://webhook.site", "http://10.0.0.7:8081", 1)
	if status, rsn := statusOf(t, sendURL(h, v, v.Signature)); status != 0 {
		t.Fatalf("refused behind the proxy: %d %s", status, rsn)
	}
}

// TestTwilioHashedBodyAsForm checks that a body bound by bodySHA256 stays
// bound when the request claims to be a form, whose parameters would
// otherwise be signed instead.
func TestTwilioHashedBodyAsForm(t *testing.T) {
	d := &delivery{url: "https://example.com/hook?bodySHA256=" +
		"5ccde7145dc5cc10b3b3b4e7a4a06ed14a7b4c56bf4dc3fcd9be8d8a6d3a4c0d", body: []byte("=")}
	if rsn := twilioSigned("application/x-www-form-urlencoded", d); rsn != reasonDigestMismatch {
		t.Fatalf("form body against a bodySHA256 URL: %q, want %s", rsn, reasonDigestMismatch)
	}
}
