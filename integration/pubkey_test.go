package integration

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	jose "github.com/go-jose/go-jose/v4"
)

// refusalPage answers every refusal with its reason, so that a test can
// check the reason from the response as well as from the log.
const refusalPage = `
	handle_errors {
		respond "refused: {http.webhook_verify.reason}" {http.error.status_code}
	}
`

// jwsRoute is a route at path that verifies detached JWS deliveries with
// the key set at url, its jwks block holding opts, and proxies them to up.
func jwsRoute(path string, up *upstream, url string, opts ...string) string {
	return fmt.Sprintf(`	handle %s {
		webhook_verify jws {
			jwks %s {
				%s
			}
		}
		reverse_proxy %s
	}
`, path, url, strings.Join(opts, "\n\t\t\t\t"), up.addr())
}

// reply is a response as the sender sees it.
type reply struct {
	status int
	body   string
	header http.Header
}

// post sends d and returns the whole response.
func (inst *instance) post(t *testing.T, d *delivery) reply {
	t.Helper()
	req, err := http.NewRequest(d.method, inst.base+d.path, bytes.NewReader(d.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range d.header {
		req.Header[k] = append([]string(nil), vs...)
	}
	resp, err := inst.client.Do(req)
	if err != nil {
		t.Fatalf("sending %s %s: %v", d.method, d.path, err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		t.Fatalf("reading response: %v", err)
	}
	return reply{status: resp.StatusCode, body: body.String(), header: resp.Header}
}

// unique gives a delivery's path a query that no other delivery has, so
// that its log line can be told apart.
func unique(path string) string {
	return fmt.Sprintf("%s?n=%d", path, seq.Add(1))
}

// expectReason checks that d is refused with status and reason, both in
// the response and in the handler's log line for it, and never reaches up.
func expectReason(t *testing.T, inst *instance, up *upstream, d *delivery, status int,
	rsn string) reply {
	t.Helper()
	before := up.count()
	got := inst.post(t, d)
	if got.status != status || got.body != "refused: "+rsn {
		t.Errorf("got %d %q, want %d %q", got.status, got.body, status, "refused: "+rsn)
	}
	if n := up.count() - before; n != 0 {
		t.Errorf("upstream received %d requests, want none", n)
	}
	if e := inst.rejectionFor(t, d.path); e.str("reason") != rsn {
		t.Errorf("log reason = %q, want %q", e.str("reason"), rsn)
	}
	return got
}

// rejectionFor returns the handler's rejection line for the request URI,
// polling for up to three seconds.
func (inst *instance) rejectionFor(t *testing.T, uri string) logEntry {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		for _, e := range rejections(t, inst.logPath, 0) {
			if e.str("uri") == uri {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rejection logged for %s", uri)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// handlerLines returns the handler's log lines with the message msg.
func handlerLines(t *testing.T, inst *instance, msg string) []logEntry {
	t.Helper()
	var found []logEntry
	for _, e := range readLog(t, inst.logPath) {
		if e.str("logger") == "http.handlers.webhook_verify" && e.str("msg") == msg {
			found = append(found, e)
		}
	}
	return found
}

// forgedBy is a delivery to path that names k's key ID but is signed over
// another body, so it fails only at the signature check.
func forgedBy(t *testing.T, path string, k partnerKey) *delivery {
	t.Helper()
	d := jwsDelivery(t, path, k)
	d.header.Set("X-JWS-Signature", k.detached(t, plainBody(), nil))
	return d
}

// awaitKeys waits until the handler at path has a key set: a forged
// delivery naming k gets 503 until then, and 401 invalid_signature after.
func awaitKeys(t *testing.T, inst *instance, path string, k partnerKey) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := inst.post(t, forgedBy(t, unique(path), k))
		if got.status != http.StatusServiceUnavailable {
			if got.status != http.StatusUnauthorized || got.body != "refused: invalid_signature" {
				t.Fatalf("forged probe: got %d %q, want 401 invalid_signature", got.status,
					got.body)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no key set within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestJWKSRotationWithoutReload checks that a sender's key rotation is
// followed while Caddy runs: the old key passes during the overlap, the new
// one as soon as it is published (through the refetch its unknown kid
// causes), and the old one stops once a refresh no longer finds it.
func TestJWKSRotationWithoutReload(t *testing.T) {
	oldKey, newKey := newEdKey(t, "partner-2025"), newEdKey(t, "partner-2026")
	ks := newKeySetServer(t, oldKey)
	up := newUpstream(t)
	inst := startCaddy(t, jwsRoute("/partner", up, ks.url(), "refresh 1s",
		"min_refresh 500ms")+refusalPage)
	awaitKeys(t, inst, "/partner", oldKey)
	expectForwarded(t, inst, up, jwsDelivery(t, unique("/partner"), oldKey), http.StatusOK)

	ks.publish(oldKey, newKey)
	ks.quietFor(500 * time.Millisecond)
	fetches := ks.count()
	expectForwarded(t, inst, up, jwsDelivery(t, unique("/partner"), newKey), http.StatusOK)
	if n := ks.count() - fetches; n != 1 {
		t.Errorf("the new kid caused %d fetches, want 1", n)
	}
	expectForwarded(t, inst, up, jwsDelivery(t, unique("/partner"), oldKey), http.StatusOK)

	retired := time.Now()
	ks.publish(newKey)
	var got reply
	d := jwsDelivery(t, unique("/partner"), oldKey)
	for got = inst.post(t, d); got.status == http.StatusOK; got = inst.post(t, d) {
		if time.Since(retired) > 3*time.Second {
			t.Fatal("the retired key still verifies 3s after the set dropped it")
		}
		time.Sleep(50 * time.Millisecond)
		d = jwsDelivery(t, unique("/partner"), oldKey)
	}
	if got.status != http.StatusUnauthorized || got.body != "refused: unknown_key" {
		t.Fatalf("retired key: got %d %q, want 401 unknown_key", got.status, got.body)
	}
	if e := inst.rejectionFor(t, d.path); e.str("reason") != "unknown_key" ||
		e.str("key_id") != "partner-2025" {
		t.Errorf("log: reason %q key_id %q, want unknown_key partner-2025", e.str("reason"),
			e.str("key_id"))
	}
	if ks.hitsSince(retired) == 0 {
		t.Error("the retired key stopped verifying without a fetch")
	}
	expectForwarded(t, inst, up, jwsDelivery(t, unique("/partner"), newKey), http.StatusOK)
}

// TestJWKSOutage checks that while the endpoint is down the last good set
// verifies for stale_for, that deliveries then get 503 keys_unavailable
// with Retry-After, and that verification resumes once the endpoint is back.
func TestJWKSOutage(t *testing.T) {
	const staleFor = 2 * time.Second
	key := newEdKey(t, "partner-1")
	ks := newKeySetServer(t, key)
	up := newUpstream(t)
	inst := startCaddy(t, jwsRoute("/partner", up, ks.url(), "refresh 1s",
		"min_refresh 500ms", "stale_for 2s", "timeout 1s")+refusalPage)
	awaitKeys(t, inst, "/partner", key)

	ks.down()
	downAt := time.Now()
	expectForwarded(t, inst, up, jwsDelivery(t, unique("/partner"), key), http.StatusOK)

	var (
		got reply
		d   *delivery
	)
	for {
		d = jwsDelivery(t, unique("/partner"), key)
		if got = inst.post(t, d); got.status != http.StatusOK {
			break
		}
		if time.Since(downAt) > staleFor+3*time.Second {
			t.Fatal("still verifying 5s after the endpoint went down with stale_for 2s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The last good fetch was at most one refresh (1s) before the endpoint
	// went down, and the set serves for refresh plus stale_for after it.
	if elapsed := time.Since(downAt); elapsed < staleFor-250*time.Millisecond {
		t.Errorf("refused %s after the endpoint went down, before stale_for %s", elapsed,
			staleFor)
	}
	if got.status != http.StatusServiceUnavailable || got.body != "refused: keys_unavailable" {
		t.Fatalf("past stale_for: got %d %q, want 503 keys_unavailable", got.status, got.body)
	}
	if ra := got.header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After = %q, want 1 (min_refresh 500ms, rounded up)", ra)
	}
	if e := inst.rejectionFor(t, d.path); e.str("reason") != "keys_unavailable" {
		t.Errorf("log reason = %q, want keys_unavailable", e.str("reason"))
	}
	failed := handlerLines(t, inst, "jwks fetch failed")
	if len(failed) == 0 || failed[0].str("jwks_url") != ks.url() || failed[0].str("level") != "warn" {
		t.Errorf("fetch failures logged as %v, want warn lines naming %s", failed, ks.url())
	}

	ks.up()
	upAt := time.Now()
	for {
		got = inst.post(t, jwsDelivery(t, unique("/partner"), key))
		if got.status == http.StatusOK {
			break
		}
		if got.status != http.StatusServiceUnavailable {
			t.Fatalf("while recovering: got %d %q, want 503 or 200", got.status, got.body)
		}
		if time.Since(upAt) > 3*time.Second {
			t.Fatal("not verifying 3s after the endpoint came back, with min_refresh 500ms")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startLoadable runs Caddy with site in its site block, like startCaddy,
// and returns a function that loads the same configuration again: after
// caddy.Stop it starts Caddy anew, while running it reloads the config.
func startLoadable(t *testing.T, site string) (*instance, func()) {
	t.Helper()
	dir := isolate(t)
	port := freePort(t)
	cfg, err := adapt(caddyfile(port, dir, site))
	if err != nil {
		t.Fatalf("adapting: %v", err)
	}
	inst := &instance{base: fmt.Sprintf("http://127.0.0.1:%d", port),
		logPath: filepath.Join(dir, "caddy.log"), client: &http.Client{Timeout: 10 * time.Second}}
	t.Cleanup(inst.client.CloseIdleConnections)
	load := func() {
		t.Helper()
		if err := caddy.Load(cfg, true); err != nil {
			t.Fatalf("loading: %v", err)
		}
		// connections to the servers of a previous load are being closed
		inst.client.CloseIdleConnections()
		waitForPort(t, port)
	}
	load()
	t.Cleanup(func() { caddy.Stop() })
	t.Cleanup(func() { inst.dumpLogOnFailure(t) })
	return inst, load
}

// TestJWKSRestartEndpointDown checks that a Caddy started while the
// endpoint is down verifies with the set its previous run kept in storage.
func TestJWKSRestartEndpointDown(t *testing.T) {
	key := newEdKey(t, "partner-1")
	ks := newKeySetServer(t, key)
	up := newUpstream(t)
	inst, load := startLoadable(t, jwsRoute("/partner", up, ks.url(), "refresh 1m",
		"min_refresh 1s", "stale_for 1h")+refusalPage)
	dir := filepath.Dir(inst.logPath)

	awaitKeys(t, inst, "/partner", key)
	expectForwarded(t, inst, up, jwsDelivery(t, unique("/partner"), key), http.StatusOK)
	stored := filepath.Join(dir, "storage", "webhook_verify", "jwks", "*.json")
	deadline := time.Now().Add(5 * time.Second)
	for files, _ := filepath.Glob(stored); len(files) != 1; files, _ = filepath.Glob(stored) {
		if time.Now().After(deadline) {
			t.Fatalf("key set not persisted: %d files match %s", len(files), stored)
		}
		time.Sleep(20 * time.Millisecond)
	}

	if err := caddy.Stop(); err != nil {
		t.Fatalf("stopping caddy: %v", err)
	}
	inst.client.CloseIdleConnections()
	ks.down()
	fetches := ks.count()
	load()

	expectForwarded(t, inst, up, jwsDelivery(t, unique("/partner"), key), http.StatusOK)
	expectReason(t, inst, up, forgedBy(t, unique("/partner"), key), http.StatusUnauthorized,
		"invalid_signature")
	if n := ks.count() - fetches; n != 0 {
		t.Errorf("endpoint answered %d fetches while down", n)
	}
	loaded := handlerLines(t, inst, "jwks loaded from storage")
	if len(loaded) != 1 || loaded[0]["keys"] != float64(1) {
		t.Errorf("storage load logged as %v, want one line with keys 1", loaded)
	}
}

// TestPublicKeyAdversarial checks the attacks on key selection, each with
// its exact status and log reason.
func TestPublicKeyAdversarial(t *testing.T) {
	good := newEdKey(t, "partner-1")
	weak := newRSAKey(t, "weak-rsa", 1024)
	ks := newKeySetServer(t, good, weak)
	attacker := newEdKey(t, "attacker-1")
	evil := newKeySetServer(t, attacker)
	up := newUpstream(t)
	inst := startCaddy(t, jwsRoute("/partner", up, ks.url(), "refresh 1m", "min_refresh 1s")+
		refusalPage)
	awaitKeys(t, inst, "/partner", good)

	t.Run("a flood of unknown key IDs makes at most one fetch", func(t *testing.T) {
		const n = 100
		ks.quietFor(time.Second)
		fetches := ks.count()
		start := time.Now()
		paths := make([]string, n)
		got := make([]reply, n)
		var wg sync.WaitGroup
		for i := range n {
			k := attacker
			k.kid = fmt.Sprintf("unknown-%d-%d", i, seq.Add(1))
			d := jwsDelivery(t, unique("/partner"), k)
			paths[i] = d.path
			wg.Go(func() {
				status, body, err := inst.trySend(d)
				if err != nil {
					t.Errorf("sending: %v", err)
				}
				got[i] = reply{status: status, body: body}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		for i, g := range got {
			if g.status != http.StatusUnauthorized || g.body != "refused: unknown_key" {
				t.Fatalf("request %d: got %d %q, want 401 unknown_key", i, g.status, g.body)
			}
		}
		// one fetch per min_refresh (1s) at most
		limit := 1 + int(elapsed/time.Second)
		if f := ks.count() - fetches; f < 1 || f > limit {
			t.Errorf("%d fetches for %d unknown kids in %s, want 1 to %d", f, n, elapsed, limit)
		}
		for _, p := range paths {
			if e := inst.rejectionFor(t, p); e.str("reason") != "unknown_key" {
				t.Fatalf("log reason for %s = %q, want unknown_key", p, e.str("reason"))
			}
		}
	})

	protected := func(hdr string) string {
		return base64.RawURLEncoding.EncodeToString([]byte(hdr))
	}

	t.Run("alg none", func(t *testing.T) {
		d := jwsDelivery(t, unique("/partner"), good)
		d.header.Set("X-JWS-Signature", protected(`{"alg":"none","kid":"partner-1"}`)+"..")
		expectReason(t, inst, up, d, http.StatusUnauthorized, "disallowed_algorithm")
	})

	t.Run("HS256 keyed with the public key", func(t *testing.T) {
		d := jwsDelivery(t, unique("/partner"), good)
		prot := protected(`{"alg":"HS256","kid":"partner-1"}`)
		m := hmac.New(sha256.New, good.priv.Public().(ed25519.PublicKey))
		m.Write([]byte(prot + "." + base64.RawURLEncoding.EncodeToString(d.body)))
		d.header.Set("X-JWS-Signature",
			prot+".."+base64.RawURLEncoding.EncodeToString(m.Sum(nil)))
		expectReason(t, inst, up, d, http.StatusUnauthorized, "disallowed_algorithm")
	})

	t.Run("embedded jwk is ignored", func(t *testing.T) {
		for _, kid := range []string{"", "partner-1"} {
			d := jwsDelivery(t, unique("/partner"), good)
			k := attacker
			k.kid = kid
			d.header.Set("X-JWS-Signature", k.detached(t, d.body,
				&jose.SignerOptions{EmbedJWK: true}))
			if !strings.Contains(jwsHeader(t, d), `"jwk":`) {
				t.Fatalf("the forged JWS carries no jwk header: %s", jwsHeader(t, d))
			}
			expectReason(t, inst, up, d, http.StatusUnauthorized, "invalid_signature")
		}
	})

	t.Run("jku and x5u headers are not fetched", func(t *testing.T) {
		d := jwsDelivery(t, unique("/partner"), good)
		opts := (&jose.SignerOptions{}).WithHeader("jku", evil.url()).
			WithHeader("x5u", evil.url())
		d.header.Set("X-JWS-Signature", attacker.detached(t, d.body, opts))
		expectReason(t, inst, up, d, http.StatusUnauthorized, "unknown_key")
		if n := evil.count(); n != 0 {
			t.Errorf("the key set the message named was fetched %d times", n)
		}
	})

	t.Run("RSA 1024-bit key in the set is skipped", func(t *testing.T) {
		var skipped []logEntry
		for _, e := range handlerLines(t, inst, "jwks key skipped") {
			if e.str("key_id") == "weak-rsa" {
				skipped = append(skipped, e)
			}
		}
		if len(skipped) == 0 || skipped[0].str("cause") != "RSA key has 1024 bits, want 2048 to 8192" {
			t.Errorf("skip of the 1024-bit key logged as %v", skipped)
		}
		expectReason(t, inst, up, jwsDelivery(t, unique("/partner"), weak),
			http.StatusUnauthorized, "unknown_key")
	})

	expectForwarded(t, inst, up, jwsDelivery(t, unique("/partner"), good), http.StatusOK)
}

// jwsHeader decodes the protected header of d's JWS.
func jwsHeader(t *testing.T, d *delivery) string {
	t.Helper()
	v := d.header.Get("X-JWS-Signature")
	b, err := base64.RawURLEncoding.DecodeString(v[:strings.IndexByte(v, '.')])
	if err != nil {
		t.Fatalf("decoding JWS header: %v", err)
	}
	return string(b)
}
