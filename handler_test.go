package webhookverify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestMain runs an empty Caddy configuration, so that handlers provisioned
// by the tests have a configuration to load the apps they use (events) into.
func TestMain(m *testing.M) {
	if err := caddy.Load([]byte(`{"admin":{"disabled":true,"config":{"persist":false}}}`),
		false); err != nil {
		panic(err)
	}
	code := m.Run()
	caddy.Stop()
	os.Exit(code)
}

// provisioned returns h provisioned in a fresh Caddy context, which is
// cancelled when the test ends.
func provisioned(t testing.TB, h *Handler) *Handler {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.ActiveContext())
	t.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		t.Fatalf("provisioning: %v", err)
	}
	if err := h.Validate(); err != nil {
		t.Fatalf("validating: %v", err)
	}
	return h
}

// setClock fixes the package clock at t for the rest of the test.
func setClock(tb testing.TB, at time.Time) {
	tb.Helper()
	old := now
	now = func() time.Time { return at }
	tb.Cleanup(func() { now = old })
}

// recorder is a next handler that remembers what it was given.
type recorder struct {
	calls  int
	body   []byte
	header http.Header
	status int
	err    error
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	rec.calls++
	rec.header = r.Header.Clone()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	rec.body = b
	if rec.err != nil {
		return rec.err
	}
	if rec.status != 0 {
		w.WriteHeader(rec.status)
	}
	return nil
}

// serve sends a request with the given headers and body through h.
func serve(h *Handler, next caddyhttp.Handler, headers map[string]string,
	body string) (*caddy.Replacer, error) {
	req := httptest.NewRequest(http.MethodPost, "http://example.com/hook", strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	repl := caddy.NewReplacer()
	ctx := context.WithValue(req.Context(), caddy.ReplacerCtxKey, repl)
	req = req.WithContext(ctx)
	return repl, h.ServeHTTP(httptest.NewRecorder(), req, next)
}

// statusOf is the HTTP status a handler error carries, or 0 for nil.
func statusOf(t *testing.T, err error) (int, string) {
	t.Helper()
	if err == nil {
		return 0, ""
	}
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) {
		t.Fatalf("error %v is not a caddyhttp.HandlerError", err)
	}
	var rej rejection
	if !errors.As(he.Err, &rej) {
		t.Fatalf("error %v carries no rejection", err)
	}
	return he.StatusCode, string(rej.reason)
}

type vector struct {
	Name    string            `json:"name"`
	Source  string            `json:"source"`
	Preset  string            `json:"preset"`
	Secret  string            `json:"secret"`
	Now     int64             `json:"now"`
	Body    string            `json:"body"`
	Headers map[string]string `json:"headers"`
}

// TestPublishedVectors checks each preset against the examples its provider
// publishes, and checks that changing one byte of the body breaks them.
func TestPublishedVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Vectors) != 3 {
		t.Fatalf("got %d vectors, want 3", len(file.Vectors))
	}

	for _, v := range file.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			if v.Now != 0 {
				setClock(t, time.Unix(v.Now, 0))
			}
			h := provisioned(t, &Handler{
				Preset:        v.Preset,
				Secrets:       []Secret{{Value: v.Secret}},
				DisableReplay: true,
			})

			next := &recorder{}
			repl, err := serve(h, next, v.Headers, v.Body)
			if err != nil {
				t.Fatalf("published example refused: %v", err)
			}
			if next.calls != 1 || string(next.body) != v.Body {
				t.Fatalf("next got %d calls, body %q", next.calls, next.body)
			}
			if got, _ := repl.GetString("http.webhook_verify.key_id"); got != "1" {
				t.Errorf("key_id placeholder = %q, want 1", got)
			}

			next = &recorder{}
			_, err = serve(h, next, v.Headers, v.Body+" ")
			if code, rsn := statusOf(t, err); code != 401 || rsn != "invalid_signature" {
				t.Errorf("altered body: got %d %s, want 401 invalid_signature", code, rsn)
			}
			if next.calls != 0 {
				t.Errorf("altered body was forwarded")
			}
		})
	}
}

// TestUpstreamOutcomeSettlesReservation checks that a failed upstream frees
// the delivery for a retry and a successful one keeps it.
func TestUpstreamOutcomeSettlesReservation(t *testing.T) {
	setClock(t, time.Unix(1614265330, 0))
	headers := map[string]string{
		"webhook-id":        "msg_p5jXN8AQM9LWM0D4loKWxJek",
		"webhook-timestamp": "1614265330",
		"webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	}
	body := `{"test": 2432232314}`

	tests := []struct {
		name      string
		first     recorder
		retryCode int
	}{
		{"5xx status releases", recorder{status: 503}, 0},
		{"error releases", recorder{err: errors.New("upstream gone")}, 0},
		{"5xx handler error releases", recorder{err: caddyhttp.Error(502, io.EOF)}, 0},
		{"4xx handler error releases", recorder{err: caddyhttp.Error(422, io.EOF)}, 0},
		{"429 status releases", recorder{status: 429}, 0},
		{"408 status releases", recorder{status: 408}, 0},
		{"422 status releases", recorder{status: 422}, 0},
		{"3xx status releases", recorder{status: 302}, 0},
		{"client closed (499) releases", recorder{status: 499}, 0},
		{"2xx commits", recorder{status: 204}, 409},
		{"nothing written commits", recorder{}, 409},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := provisioned(t, &Handler{
				Preset:  "standard_webhooks",
				Secrets: []Secret{{Value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
				// A fresh table per case: the shared pool keys tables by size.
				ReplayRaw: json.RawMessage(`{"store":"memory","max_entries":` +
					strconv.Itoa(len(tt.name)+1000) + `}`),
			})
			first := tt.first
			serve(h, &first, headers, body)
			if first.calls != 1 {
				t.Fatalf("first delivery not forwarded")
			}

			retry := &recorder{}
			_, err := serve(h, retry, headers, body)
			code, _ := statusOf(t, err)
			if code != tt.retryCode {
				t.Fatalf("retry status = %d, want %d", code, tt.retryCode)
			}
			if wantCalls := btoi(tt.retryCode == 0); retry.calls != wantCalls {
				t.Errorf("retry forwarded %d times, want %d", retry.calls, wantCalls)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestReplayBodyClose checks that the forwarded body reads the verified
// bytes, and that after Close reads fail, whatever reuses the buffer.
func TestReplayBodyClose(t *testing.T) {
	buf := getBuffer()
	buf.WriteString("payload")
	b := newReplayBody(buf)

	got, err := io.ReadAll(b)
	if err != nil || string(got) != "payload" {
		t.Fatalf("read %q, %v", got, err)
	}
	b.Close()
	buf.WriteString("someone else's bytes")

	// An error, not io.EOF: a proxy retrying with this body must fail
	// rather than send an empty body under the delivery's signature.
	n, err := b.Read(make([]byte, 8))
	if n != 0 || err != errBodyClosed {
		t.Fatalf("read after close: %d bytes, %v", n, err)
	}
	if n, err := b.WriteTo(io.Discard); n != 0 || err != errBodyClosed {
		t.Fatalf("WriteTo after close: %d bytes, %v", n, err)
	}
}

// TestReplayWithSignatureStripped checks that a delivery signed for two
// configured secrets stays a replay when one of its signatures is removed.
func TestReplayWithSignatureStripped(t *testing.T) {
	setClock(t, time.Unix(1614265330, 0))
	h := provisioned(t, &Handler{
		Preset: "standard_webhooks",
		Secrets: []Secret{
			{Value: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", KeyID: "old"},
			{Value: "whsec_c2Vjb25kIGV4YW1wbGUgc2VjcmV0IGtleQ==", KeyID: "new"},
		},
		ReplayRaw: json.RawMessage(`{"store":"memory","max_entries":777}`),
	})
	body := `{"test": 2432232314}`
	id, ts := "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330"
	s, err := newSigner(&Handler{Preset: "standard_webhooks",
		Secrets: []Secret{{Value: "whsec_c2Vjb25kIGV4YW1wbGUgc2VjcmV0IGtleQ=="}}})
	if err != nil {
		t.Fatal(err)
	}
	hdr := http.Header{}
	s.sign(hdr, &delivery{body: []byte(body), id: id}, time.Unix(1614265330, 0))
	newSig := hdr.Get("webhook-signature")
	oldSig := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

	both := map[string]string{"webhook-id": id, "webhook-timestamp": ts,
		"webhook-signature": oldSig + " " + newSig}
	next := &recorder{}
	if _, err := serve(h, next, both, body); err != nil || next.calls != 1 {
		t.Fatalf("delivery signed for both secrets: %v", err)
	}

	for name, sig := range map[string]string{"only new": newSig, "only old": oldSig} {
		stripped := map[string]string{"webhook-id": id, "webhook-timestamp": ts,
			"webhook-signature": sig}
		_, err := serve(h, &recorder{}, stripped, body)
		if code, rsn := statusOf(t, err); code != 409 || rsn != "duplicate_delivery" {
			t.Errorf("%s: got %d %s, want 409 duplicate_delivery", name, code, rsn)
		}
	}
}

// TestClaimedLengthDoesNotAllocate sends a request that claims a huge body
// and sends one byte: the buffer must grow with the bytes that arrive, not
// with the claim.
func TestClaimedLengthDoesNotAllocate(t *testing.T) {
	req := httptest.NewRequest(http.MethodPost, "http://example.com/", strings.NewReader("x"))
	req.ContentLength = 99_000_000_000
	buf := getBuffer()
	if rsn := readBody(req, 100<<30, buf); rsn != "" || buf.String() != "x" {
		t.Fatalf("readBody = %q, %q", rsn, buf.String())
	}
	if buf.Cap() > maxPresize+4096 {
		t.Fatalf("a 1-byte body with a claimed 99 GB reserved %d bytes", buf.Cap())
	}
}
