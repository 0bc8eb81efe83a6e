package webhookverify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// handshakes are the handshake messages as the providers document them.
var handshakes = map[string]struct {
	body    string
	headers map[string]string
}{
	"zoom": {body: `{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},` +
		`"event_ts":1654503849680,"event":"endpoint.url_validation"}`},
	"slack": {body: `{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":` +
		`"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`},
	"twitch": {
		body: `{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"id":` +
			`"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":` +
			`"webhook_callback_verification_pending","type":"channel.follow","version":"2"}}`,
		headers: map[string]string{"Twitch-Eventsub-Message-Type": "webhook_callback_verification"},
	},
}

// sendSigned signs body as preset with secret, sends it through h and
// returns the response and whether the next handler was called.
func sendSigned(t *testing.T, h *Handler, preset, secret, body string,
	extra map[string]string) (*httptest.ResponseRecorder, bool) {
	t.Helper()
	s, err := newSigner(&Handler{Preset: preset, Secrets: []Secret{{Value: secret}}})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "http://example.com/hook", strings.NewReader(body))
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	if err := s.sign(req.Header, &delivery{body: []byte(body), id: "m-1"}, now()); err != nil {
		t.Fatal(err)
	}
	req = req.WithContext(context.WithValue(req.Context(), caddy.ReplacerCtxKey,
		caddy.NewReplacer()))

	w := httptest.NewRecorder()
	next := &recorder{}
	if err := h.ServeHTTP(w, req, next); err != nil {
		code, _ := statusOf(t, err)
		w.Code = code
	}
	return w, next.calls > 0
}

func TestChallenges(t *testing.T) {
	setClock(t, time.Now())
	zoomMAC := hmac.New(sha256.New, []byte("s3cret"))
	zoomMAC.Write([]byte("qgg8vlvZRS6UYooatFL8Aw"))
	want := map[string]string{
		"zoom": `{"encryptedToken":"` + hex.EncodeToString(zoomMAC.Sum(nil)) +
			`","plainToken":"qgg8vlvZRS6UYooatFL8Aw"}` + "\n",
		"slack":  "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
		"twitch": "pogchamp-kappa-360noscope-vohiyo",
	}

	for preset, hs := range handshakes {
		t.Run(preset, func(t *testing.T) {
			h := provisioned(t, &Handler{Preset: preset, Challenge: true,
				Secrets: []Secret{{Value: "s3cret"}}, DisableReplay: true})

			w, forwarded := sendSigned(t, h, preset, "s3cret", hs.body, hs.headers)
			if w.Code != 200 || w.Body.String() != want[preset] || forwarded {
				t.Fatalf("handshake: %d %q forwarded=%v, want 200 %q", w.Code, w.Body,
					forwarded, want[preset])
			}

			w, forwarded = sendSigned(t, h, preset, "not-the-secret", hs.body, hs.headers)
			if w.Code != 401 || w.Body.Len() != 0 || forwarded {
				t.Fatalf("forged handshake: %d %q forwarded=%v, want 401 and no answer",
					w.Code, w.Body, forwarded)
			}

			w, forwarded = sendSigned(t, h, preset, "s3cret", `{"event":"other"}`, nil)
			if w.Code != 200 || w.Body.Len() != 0 || !forwarded {
				t.Fatalf("ordinary delivery: %d %q forwarded=%v, want it forwarded",
					w.Code, w.Body, forwarded)
			}

			off := provisioned(t, &Handler{Preset: preset,
				Secrets: []Secret{{Value: "s3cret"}}, DisableReplay: true})
			if _, forwarded = sendSigned(t, off, preset, "s3cret", hs.body,
				hs.headers); !forwarded {
				t.Fatal("handshake not forwarded with challenge off")
			}
		})
	}
}

func TestChallengeNeedsPreset(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.ActiveContext())
	defer cancel()
	h := &Handler{Preset: "github", Challenge: true, Secrets: []Secret{{Value: "s"}}}
	err := h.Provision(ctx)
	if err == nil || !strings.Contains(err.Error(), "challenge: preset \"github\"") {
		t.Fatalf("challenge on github: %v", err)
	}
}
