package webhookverify

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
	jose "github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
)

// fakeClock is a settable clock for the package's now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// useFakeTime installs a fake clock, and a timer for new JWKS caches that
// fires only when the test sends on the returned channel. Sending blocks
// until a background loop is waiting, so it wakes exactly one loop.
func useFakeTime(t *testing.T) (*fakeClock, chan<- time.Time) {
	t.Helper()
	clk := &fakeClock{t: testClock}
	tick := make(chan time.Time)
	oldNow, oldAfter := now, jwksAfter
	now = clk.Now
	jwksAfter = func(time.Duration) <-chan time.Time { return tick }
	t.Cleanup(func() { now, jwksAfter = oldNow, oldAfter })
	return clk, tick
}

// keyPair is a sender's key pair with its key ID.
type keyPair struct {
	kid  string
	priv ed25519.PrivateKey
}

func newKeyPair(t testing.TB, kid string) keyPair {
	_, priv := newEd25519(t)
	return keyPair{kid: kid, priv: priv}
}

func (s keyPair) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: s.priv.Public(), KeyID: s.kid, Use: "sig", Algorithm: "EdDSA"}
}

// headers signs body at the given time for the raw scheme of jwksHandler.
func (s keyPair) headers(at time.Time, body string) map[string]string {
	sig := ed25519.Sign(s.priv, []byte(ts(at)+"."+body))
	return map[string]string{"X-Time": ts(at), "X-Key": s.kid,
		"X-Sig": base64.StdEncoding.EncodeToString(sig)}
}

// jwksServer is a key set endpoint on 127.0.0.1 whose answer the test sets.
type jwksServer struct {
	srv  *httptest.Server
	hits atomic.Int64

	mu      sync.Mutex
	status  int
	body    []byte
	header  http.Header
	release chan struct{} // when not nil, requests wait for it
	reqs    []http.Header
}

func newJWKSServer(t *testing.T, keys ...keyPair) *jwksServer {
	t.Helper()
	js := &jwksServer{status: http.StatusOK, header: http.Header{}}
	js.publish(t, keys...)
	js.srv = httptest.NewServer(http.HandlerFunc(js.serve))
	t.Cleanup(js.srv.Close)
	return js
}

func (js *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	js.hits.Add(1)
	js.mu.Lock()
	js.reqs = append(js.reqs, r.Header.Clone())
	status, body, release := js.status, js.body, js.release
	for k, v := range js.header {
		w.Header()[k] = v
	}
	js.mu.Unlock()
	if release != nil {
		<-release
	}
	w.WriteHeader(status)
	w.Write(body)
}

// publish makes the endpoint serve a set of these keys.
func (js *jwksServer) publish(t testing.TB, keys ...keyPair) {
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.jwk())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	js.set(http.StatusOK, b)
}

func (js *jwksServer) set(status int, body []byte) {
	js.mu.Lock()
	js.status, js.body = status, body
	js.mu.Unlock()
}

func (js *jwksServer) lastRequest() http.Header {
	js.mu.Lock()
	defer js.mu.Unlock()
	return js.reqs[len(js.reqs)-1]
}

// jwksHandler is a raw Ed25519 scheme whose keys come from the endpoint.
func jwksHandler(t *testing.T, src *JWKSSource) *Handler {
	t.Helper()
	h := &Handler{
		JWKS: []*JWKSSource{src}, Algorithm: "ed25519", KeyIDHeader: "X-Key",
		SignatureHeader: "X-Sig", SignatureEncoding: "base64",
		SignedContent: "{timestamp}.{body}", TimestampHeader: "X-Time",
		DisableReplay: true,
	}
	t.Cleanup(func() { h.Cleanup() })
	return provisioned(t, h)
}

// cacheOf returns the handler's first JWKS cache.
func cacheOf(h *Handler) *jwksCache { return h.ring.remote[0].(*jwksCache) }

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitFetches waits until the endpoint has answered n requests and the
// cache has settled the last one.
func waitFetches(t *testing.T, js *jwksServer, c *jwksCache, n int64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d fetches", n), func() bool {
		c.mu.Lock()
		idle := c.inflight == nil
		c.mu.Unlock()
		return js.hits.Load() >= n && idle
	})
	if got := js.hits.Load(); got != n {
		t.Fatalf("endpoint got %d fetches, want %d", got, n)
	}
}

func TestJWKSRotation(t *testing.T) {
	clk, tick := useFakeTime(t)
	oldKey, newKey := newKeyPair(t, "2025"), newKeyPair(t, "2026")
	js := newJWKSServer(t, oldKey)
	h := jwksHandler(t, &JWKSSource{URL: js.srv.URL})
	c := cacheOf(h)
	waitFetches(t, js, c, 1)
	core, logs := observer.New(zapcore.InfoLevel)
	c.logger = zap.New(core)

	body := `{"n":1}`
	serveReq(t, h, oldKey.headers(clk.Now(), body), body).expect(t, 200, "")
	// a kid nobody published, within min_refresh of the last fetch: no fetch
	serveReq(t, h, newKey.headers(clk.Now(), body), body).expect(t, 401, "unknown_key")
	waitFetches(t, js, c, 1)

	// the sender publishes its new key next to the old one
	js.publish(t, oldKey, newKey)
	clk.Advance(31 * time.Second)
	serveReq(t, h, newKey.headers(clk.Now(), body), body).expect(t, 200, "")
	waitFetches(t, js, c, 2)
	if cc := js.lastRequest().Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("forced refetch sent Cache-Control %q, want no-cache", cc)
	}
	serveReq(t, h, oldKey.headers(clk.Now(), body), body).expect(t, 200, "")

	// the old key is withdrawn; after the next background refresh it fails
	js.publish(t, newKey)
	clk.Advance(15 * time.Minute)
	tick <- time.Time{}
	waitFetches(t, js, c, 3)
	if cc := js.lastRequest().Get("Cache-Control"); cc != "" {
		t.Errorf("background refresh sent Cache-Control %q, want none", cc)
	}
	serveReq(t, h, oldKey.headers(clk.Now(), body), body).expect(t, 401, "unknown_key")
	serveReq(t, h, newKey.headers(clk.Now(), body), body).expect(t, 200, "")

	changes := logs.FilterMessage("jwks keys changed").All()
	if len(changes) != 2 ||
		fmt.Sprint(changes[0].ContextMap()["added"], changes[0].ContextMap()["removed"]) !=
			"[2026] []" ||
		fmt.Sprint(changes[1].ContextMap()["added"], changes[1].ContextMap()["removed"]) !=
			"[] [2025]" {
		t.Errorf("key set changes logged: %v", changes)
	}
	if n := testutil.ToFloat64(jwksKeys.WithLabelValues(js.srv.URL)); n != 1 {
		t.Errorf("jwks_keys = %v, want 1", n)
	}
	if n := testutil.ToFloat64(jwksFetches.WithLabelValues(js.srv.URL, "ok")); n != 3 {
		t.Errorf("jwks_fetches_total{result=ok} = %v, want 3", n)
	}
}

// TestJWKSUnknownKidFlood checks that a flood of unknown key IDs makes at
// most one fetch per min_refresh, however concurrent.
func TestJWKSUnknownKidFlood(t *testing.T) {
	clk, _ := useFakeTime(t)
	key := newKeyPair(t, "k")
	js := newJWKSServer(t, key)
	h := jwksHandler(t, &JWKSSource{URL: js.srv.URL})
	c := cacheOf(h)
	waitFetches(t, js, c, 1)
	clk.Advance(time.Minute)

	// the first refetch is held at the endpoint while the others pile up
	js.mu.Lock()
	js.release = make(chan struct{})
	js.mu.Unlock()
	var wg sync.WaitGroup
	var unknown atomic.Int64
	for i := range 1000 {
		wg.Go(func() {
			s := keyPair{kid: fmt.Sprintf("random-%d", i), priv: key.priv}
			body := `{}`
			got := serveQuiet(h, s.headers(clk.Now(), body), body)
			if got == http.StatusUnauthorized {
				unknown.Add(1)
			}
		})
	}
	waitFor(t, "the refetch", func() bool { return js.hits.Load() == 2 })
	close(js.release)
	wg.Wait()

	if n := js.hits.Load(); n != 2 {
		t.Fatalf("endpoint got %d fetches, want 2 (the first and one refetch)", n)
	}
	if n := unknown.Load(); n != 1000 {
		t.Fatalf("%d of 1000 deliveries got 401, want all", n)
	}
}

// serveQuiet serves one delivery from any goroutine and returns its status.
func serveQuiet(h *Handler, headers map[string]string, body string) int {
	req := httptest.NewRequest(http.MethodPost, "http://example.com/hook",
		strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	req = req.WithContext(context.WithValue(req.Context(), caddy.ReplacerCtxKey,
		caddy.NewReplacer()))
	err := h.ServeHTTP(httptest.NewRecorder(), req, &recorder{})
	if err == nil {
		return http.StatusOK
	}
	var he caddyhttp.HandlerError
	if errors.As(err, &he) {
		return he.StatusCode
	}
	return 0
}

// TestJWKSStale checks that failures of every kind leave the last good set
// in use for stale_for, then 503 with Retry-After, then recovery.
func TestJWKSStale(t *testing.T) {
	clk, tick := useFakeTime(t)
	key := newKeyPair(t, "k")
	js := newJWKSServer(t, key)
	h := jwksHandler(t, &JWKSSource{URL: js.srv.URL, StaleFor: caddy.Duration(2 * time.Hour)})
	c := cacheOf(h)
	waitFetches(t, js, c, 1)
	body := `{"n":2}`

	huge := []byte(`{"keys":[` + strings.Repeat(" ", maxJWKSBytes) + `]}`)
	other := newKeyPair(t, "other")
	failures := []struct {
		name   string
		status int
		body   []byte
	}{
		{"server error", 500, []byte("oops")},
		{"garbage", 200, []byte("<html>not json</html>")},
		{"empty set", 200, []byte(`{"keys":[]}`)},
		{"only unusable keys", 200, []byte(`{"keys":[{"kty":"oct","k":"AAAA"}]}`)},
		{"huge body", 200, huge},
	}
	fetches := int64(1)
	for _, f := range failures {
		js.set(f.status, f.body)
		clk.Advance(15 * time.Minute)
		tick <- time.Time{}
		fetches++
		waitFetches(t, js, c, fetches)
		if f.name == "only unusable keys" {
			// a set that would drop the current key must not replace it
			clk.Advance(31 * time.Second)
			serveReq(t, h, other.headers(clk.Now(), body), body).expect(t, 401, "unknown_key")
			fetches++
			waitFetches(t, js, c, fetches)
		}
		serveReq(t, h, key.headers(clk.Now(), body), body).expect(t, 200, "")
	}

	// past refresh + stale_for since the last good fetch: fail closed
	clk.Advance(2 * time.Hour)
	got := serveReq(t, h, key.headers(clk.Now(), body), body)
	got.expect(t, 503, "keys_unavailable")
	if ra := got.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After = %q, want a positive number of seconds", ra)
	}

	// the endpoint comes back
	js.publish(t, key)
	clk.Advance(time.Minute)
	tick <- time.Time{}
	waitFetches(t, js, c, fetches+1)
	serveReq(t, h, key.headers(clk.Now(), body), body).expect(t, 200, "")
}

// TestJWKSStartup checks that a delivery before the first set arrives gets
// 503 with Retry-After, and that provisioning did not wait for the fetch.
func TestJWKSStartup(t *testing.T) {
	clk, _ := useFakeTime(t)
	key := newKeyPair(t, "k")
	js := newJWKSServer(t, key)
	js.release = make(chan struct{})
	h := jwksHandler(t, &JWKSSource{URL: js.srv.URL, MinRefresh: caddy.Duration(7 * time.Second)})
	body := `{}`

	waitFor(t, "the first fetch", func() bool { return js.hits.Load() == 1 })
	got := serveReq(t, h, key.headers(clk.Now(), body), body)
	got.expect(t, 503, "keys_unavailable")
	if ra := got.header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After = %q, want 1 while the first fetch runs", ra)
	}
	close(js.release)
	waitFetches(t, js, cacheOf(h), 1)
	serveReq(t, h, key.headers(clk.Now(), body), body).expect(t, 200, "")
}

// TestJWKSPersisted checks that a new cache with the endpoint down verifies
// from the set its predecessor stored, within stale_for.
func TestJWKSPersisted(t *testing.T) {
	clk, _ := useFakeTime(t)
	key := newKeyPair(t, "k")
	js := newJWKSServer(t, key)
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	cfg, err := (&JWKSSource{URL: js.srv.URL}).resolved(caddy.NewReplacer())
	if err != nil {
		t.Fatal(err)
	}

	first, err := newIdleJWKSCache(cfg, storage, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	first.join(context.Background(), false)
	if first.set.Load() == nil {
		t.Fatal("first cache has no set after a fetch")
	}

	js.set(http.StatusServiceUnavailable, nil)
	clk.Advance(2 * time.Hour)
	second, err := newIdleJWKSCache(cfg, storage, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	second.loadStored()
	close(second.loaded)
	second.join(context.Background(), false)

	set, _ := second.current(context.Background())
	if !set.hasKID("k") {
		t.Fatal("restarted cache does not serve the persisted key")
	}

	clk.Advance(25 * time.Hour)
	if set, retry := second.current(context.Background()); set != nil || retry <= 0 {
		t.Fatalf("persisted set past stale_for: set %v, retry %s; want none", set, retry)
	}
}

// TestJWKSCacheControl checks max-age bounds, Age, and ETag revalidation.
func TestJWKSCacheControl(t *testing.T) {
	c := &jwksCache{refresh: 15 * time.Minute, minRefresh: 30 * time.Second}
	tests := []struct {
		cc, age string
		want    time.Duration
	}{
		{"", "", 15 * time.Minute},
		{"public, max-age=600", "", 10 * time.Minute},
		{"max-age=600", "120", 8 * time.Minute},
		{"max-age=5", "", 30 * time.Second},
		{"max-age=86400", "", 15 * time.Minute},
		{"no-cache", "", 30 * time.Second},
		{"max-age=-1", "", 15 * time.Minute},
		{"max-age=99999999999999999999", "", 15 * time.Minute},
	}
	for _, tt := range tests {
		h := http.Header{}
		h.Set("Cache-Control", tt.cc)
		if tt.age != "" {
			h.Set("Age", tt.age)
		}
		if got := c.interval(h); got != tt.want {
			t.Errorf("Cache-Control %q Age %q: interval %s, want %s", tt.cc, tt.age, got, tt.want)
		}
	}

	clk, tick := useFakeTime(t)
	key := newKeyPair(t, "k")
	js := newJWKSServer(t, key)
	js.header.Set("ETag", `"v1"`)
	js.header.Set("Cache-Control", "max-age=300")
	h := jwksHandler(t, &JWKSSource{URL: js.srv.URL, StaleFor: caddy.Duration(time.Minute)})
	cache := cacheOf(h)
	waitFetches(t, js, cache, 1)

	js.set(http.StatusNotModified, nil)
	clk.Advance(5 * time.Minute)
	tick <- time.Time{}
	waitFetches(t, js, cache, 2)
	if inm := js.lastRequest().Get("If-None-Match"); inm != `"v1"` {
		t.Errorf("If-None-Match = %q, want the ETag", inm)
	}
	// the 304 re-dated the set: it is still usable 5m + stale_for later
	clk.Advance(5*time.Minute + 30*time.Second)
	body := `{}`
	serveReq(t, h, key.headers(clk.Now(), body), body).expect(t, 200, "")
}

// TestJWKSRedirects checks that a redirect on the same host is followed and
// one to another host (another port on loopback) is refused.
func TestJWKSRedirects(t *testing.T) {
	key := newKeyPair(t, "k")
	js := newJWKSServer(t, key)
	mux := http.NewServeMux()
	var sameHost *httptest.Server
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, sameHost.URL+"/keys", http.StatusFound)
	})
	mux.HandleFunc("/keys", js.serve)
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, js.srv.URL, http.StatusFound)
	})
	sameHost = httptest.NewServer(mux)
	t.Cleanup(sameHost.Close)

	for _, tt := range []struct {
		path string
		ok   bool
	}{{"/moved", true}, {"/away", false}} {
		cfg, err := (&JWKSSource{URL: sameHost.URL + tt.path}).resolved(caddy.NewReplacer())
		if err != nil {
			t.Fatal(err)
		}
		c, err := newIdleJWKSCache(cfg, nil, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		before := js.hits.Load()
		c.join(context.Background(), false)
		if got := c.set.Load() != nil; got != tt.ok {
			t.Errorf("%s: set installed = %v, want %v", tt.path, got, tt.ok)
		}
		if tt.ok != (js.hits.Load() == before+1) {
			t.Errorf("%s: endpoint hits went %d -> %d", tt.path, before, js.hits.Load())
		}
	}
}

// TestJWKSKeyFiltering checks which keys of a hostile or sloppy set are
// used: only signature keys of accepted types and sizes.
func TestJWKSKeyFiltering(t *testing.T) {
	good := newKeyPair(t, "good")
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, edPriv := newEd25519(t)
	mk := func(k jose.JSONWebKey) json.RawMessage {
		b, err := k.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	edPub := edPriv.Public()
	set := struct {
		Keys []json.RawMessage `json:"keys"`
	}{Keys: []json.RawMessage{
		json.RawMessage(`{"kty":"oct","kid":"hmac","k":"c2VjcmV0"}`),
		mk(jose.JSONWebKey{Key: edPub, KeyID: "enc", Use: "enc"}),
		mk(jose.JSONWebKey{Key: &small.PublicKey, KeyID: "rsa1024"}),
		mk(jose.JSONWebKey{Key: edPriv, KeyID: "private"}),
		json.RawMessage(`{"kty":"OKP","crv":"Ed25519","kid":"none","alg":"none","x":"` +
			base64.RawURLEncoding.EncodeToString(edPub.(ed25519.PublicKey)) + `"}`),
		json.RawMessage(`{"kty":"OKP","crv":"Ed25519","kid":"hs","alg":"HS256","x":"` +
			base64.RawURLEncoding.EncodeToString(edPub.(ed25519.PublicKey)) + `"}`),
		mk(jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "es-on-rsa", Algorithm: "ES256"}),
		json.RawMessage(`{"kty":"EC","crv":"P-256","kid":"broken","x":"AA","y":"AA"}`),
		mk(good.jwk()),
	}}
	body, _ := json.Marshal(set)

	keys, skipped, err := parseJWKSet(body, nil, testClock)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].kid != "good" {
		t.Fatalf("kept %d keys, want only %q", len(keys), "good")
	}
	if len(skipped) != 8 {
		t.Fatalf("skipped %d keys, want 8: %+v", len(skipped), skipped)
	}
	for _, s := range skipped {
		if strings.Contains(s.cause, "c2VjcmV0") {
			t.Errorf("skip cause echoes key material: %s", s.cause)
		}
	}
}

// TestJWKSReloadsShareOneCache checks that 100 provision/cleanup cycles of
// handlers with the same source keep one cache and one fetch.
func TestJWKSReloadsShareOneCache(t *testing.T) {
	useFakeTime(t)
	key := newKeyPair(t, "k")
	js := newJWKSServer(t, key)
	src := func() *JWKSSource { return &JWKSSource{URL: js.srv.URL} }

	prev := jwksHandler(t, src())
	first := cacheOf(prev)
	waitFetches(t, js, first, 1)
	for range 100 {
		next := jwksHandler(t, src())
		if cacheOf(next) != first {
			t.Fatal("a reload made a second cache for the same source")
		}
		prev.Cleanup()
		prev = next
	}
	if n := js.hits.Load(); n != 1 {
		t.Fatalf("100 reloads made %d fetches, want 1", n)
	}
	prev.Cleanup()
	select {
	case <-first.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the cache's loop still runs after its last handler was cleaned up")
	}
}
