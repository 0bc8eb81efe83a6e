package integration

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// partnerKey is a sender's signing key as it publishes it in its JWKS.
type partnerKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
	// certs is the x5c chain published with the key, leaf first.
	certs []*x509.Certificate
}

// newEdKey makes an Ed25519 partner key.
func newEdKey(t *testing.T, kid string) partnerKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generating Ed25519 key: %v", err)
	}
	return partnerKey{kid: kid, alg: jose.EdDSA, priv: priv}
}

// newECKey makes an ECDSA partner key on the curve, for alg.
func newECKey(t *testing.T, kid string, c elliptic.Curve, alg jose.SignatureAlgorithm) partnerKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatalf("generating ECDSA key: %v", err)
	}
	return partnerKey{kid: kid, alg: alg, priv: priv}
}

// newRSAKey makes an RSA partner key of the given size, for RS256.
func newRSAKey(t *testing.T, kid string, bits int) partnerKey {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatalf("generating RSA key: %v", err)
	}
	return partnerKey{kid: kid, alg: jose.RS256, priv: priv}
}

// jwk is the public JWK that the partner publishes.
func (k partnerKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Use: "sig",
		Algorithm: string(k.alg), Certificates: k.certs}
}

// sign makes a JWS over payload, with the key ID and extra protected headers.
func (k partnerKey) sign(t *testing.T, payload []byte,
	opts *jose.SignerOptions) *jose.JSONWebSignature {
	t.Helper()
	if opts == nil {
		opts = &jose.SignerOptions{}
	}
	if k.kid != "" {
		opts.WithHeader("kid", k.kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, opts)
	if err != nil {
		t.Fatalf("making JWS signer: %v", err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatalf("signing JWS: %v", err)
	}
	return obj
}

// detached is a compact JWS over body with the payload left out (RFC 7515
// Appendix F), as the jws preset reads it.
func (k partnerKey) detached(t *testing.T, body []byte, opts *jose.SignerOptions) string {
	t.Helper()
	s, err := k.sign(t, body, opts).DetachedCompactSerialize()
	if err != nil {
		t.Fatalf("serializing detached JWS: %v", err)
	}
	return s
}

// bodyToken is a compact JWS whose claims carry the hex SHA-256 of body
// under claim, and an issued-at time.
func (k partnerKey) bodyToken(t *testing.T, body []byte, claim string, iat time.Time) string {
	t.Helper()
	sum := sha256.Sum256(body)
	payload, err := json.Marshal(map[string]any{claim: hex.EncodeToString(sum[:]),
		"iat": iat.Unix()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := k.sign(t, payload, nil).CompactSerialize()
	if err != nil {
		t.Fatalf("serializing compact JWS: %v", err)
	}
	return s
}

// jwsDelivery is a fresh delivery to path whose body k signs in a detached
// JWS in X-JWS-Signature.
func jwsDelivery(t *testing.T, path string, k partnerKey) *delivery {
	t.Helper()
	d := &delivery{method: http.MethodPost, path: path, body: plainBody(),
		header: http.Header{"Content-Type": {"application/json"}}}
	d.header.Set("X-JWS-Signature", k.detached(t, d.body, nil))
	return d
}

// keySetServer is a sender's JWKS endpoint on a loopback port that the test
// can take down and bring back on the same address.
type keySetServer struct {
	t    *testing.T
	addr string

	mu   sync.Mutex
	srv  *http.Server
	doc  []byte
	hits []time.Time
}

// newKeySetServer starts an endpoint that serves the keys at /jwks.json.
func newKeySetServer(t *testing.T, keys ...partnerKey) *keySetServer {
	t.Helper()
	s := &keySetServer{t: t, addr: "127.0.0.1:0"}
	s.publish(keys...)
	s.up()
	t.Cleanup(s.down)
	return s
}

// url is the address of the key set.
func (s *keySetServer) url() string { return "http://" + s.addr + "/jwks.json" }

// publish replaces the served set with these keys' public JWKs.
func (s *keySetServer) publish(keys ...partnerKey) {
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.jwk())
	}
	doc, err := json.Marshal(set)
	if err != nil {
		s.t.Fatalf("encoding JWKS: %v", err)
	}
	s.publishRaw(doc)
}

// publishRaw replaces the served document.
func (s *keySetServer) publishRaw(doc []byte) {
	s.mu.Lock()
	s.doc = doc
	s.mu.Unlock()
}

func (s *keySetServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.hits = append(s.hits, time.Now())
	doc := s.doc
	s.mu.Unlock()
	if r.URL.Path != "/jwks.json" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Write(doc)
}

// up starts listening, on the same port as before when it was up already.
func (s *keySetServer) up() {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("listening for the key set on %s: %v", s.addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(s.serveHTTP)}
	s.mu.Lock()
	s.addr, s.srv = ln.Addr().String(), srv
	s.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.t.Errorf("serving the key set: %v", err)
		}
	}()
}

// down closes the listener and every connection: fetches are refused.
func (s *keySetServer) down() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// count is how many requests the endpoint has answered.
func (s *keySetServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.hits)
}

// lastHit is when the endpoint last received a request.
func (s *keySetServer) lastHit() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.hits) == 0 {
		return time.Time{}
	}
	return s.hits[len(s.hits)-1]
}

// hitsSince is how many requests arrived at or after at.
func (s *keySetServer) hitsSince(at time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, h := range s.hits {
		if !h.Before(at) {
			n++
		}
	}
	return n
}

// quietFor waits until the endpoint has had no request for d, so that the
// next unknown key ID is past the min_refresh rate limit.
func (s *keySetServer) quietFor(d time.Duration) {
	for {
		wait := time.Until(s.lastHit().Add(d))
		if wait <= 0 {
			return
		}
		time.Sleep(wait)
	}
}
