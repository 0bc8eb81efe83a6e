package webhookverify

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// newJWKSClient is the HTTP client of one key set: bounded in time, and
// following redirects only to the same scheme, host and port.
func newJWKSClient(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 1
	return &http.Client{
		Timeout:   timeout,
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxJWKSRedirects {
				return errors.New("too many redirects")
			}
			from := via[0].URL
			if req.URL.Scheme != from.Scheme || req.URL.Host != from.Host {
				return fmt.Errorf("redirect to another host refused: %s", req.URL.Redacted())
			}
			return nil
		},
	}
}

// fetch gets the key set once. It returns the set to install: a new one
// for a 200 with at least one usable key, or the current one re-dated for a
// 304. Anything else is an error and leaves the current set in place.
func (c *jwksCache) fetch(ctx context.Context, forced bool) (*cachedSet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.URL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	if forced {
		// an intermediate cache must not answer with the set we already have
		req.Header.Set("Cache-Control", "no-cache")
	}
	cur := c.set.Load()
	if cur != nil && cur.etag != "" {
		req.Header.Set("If-None-Match", cur.etag)
	}

	c.fetches.Add(1)
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching: %w", err)
	}
	defer resp.Body.Close()
	interval := c.interval(resp.Header)

	switch {
	case resp.StatusCode == http.StatusNotModified && cur != nil:
		next := *cur
		next.goodAt, next.interval = now(), interval
		return &next, nil
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("fetching: status %d", resp.StatusCode)
	}

	body, err := readCapped(resp.Body, maxJWKSBytes)
	if err != nil {
		return nil, err
	}
	keys, err := c.parseSet(body)
	if err != nil {
		return nil, err
	}
	return &cachedSet{keys: newKeySet(keys), goodAt: now(), interval: interval, raw: body,
		etag: resp.Header.Get("ETag")}, nil
}

// readCapped reads a body of at most limit bytes; a longer one is an error.
func readCapped(r io.Reader, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(r, limit+1)); err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	if int64(buf.Len()) > limit {
		return nil, fmt.Errorf("response larger than %d bytes", limit)
	}
	return buf.Bytes(), nil
}

// interval is how long the response may be used before the next refresh:
// its Cache-Control max-age (less its Age) within [min_refresh, refresh],
// or refresh when it gives none.
func (c *jwksCache) interval(h http.Header) time.Duration {
	maxAge, ok := cacheMaxAge(h)
	if !ok {
		return c.refresh
	}
	return min(max(maxAge, c.minRefresh), c.refresh)
}

// cacheMaxAge reads max-age from Cache-Control; no-cache and no-store count
// as zero.
func cacheMaxAge(h http.Header) (time.Duration, bool) {
	var (
		age   time.Duration
		found bool
	)
	for _, dir := range strings.Split(h.Get("Cache-Control"), ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(dir), "=")
		switch strings.ToLower(name) {
		case "no-cache", "no-store":
			return 0, true
		case "max-age":
			n, err := parseDigits(strings.Trim(val, `"`))
			if err != nil {
				continue
			}
			age, found = time.Duration(min(n, 1<<31))*time.Second, true
		}
	}
	if !found {
		return 0, false
	}
	if n, err := parseDigits(h.Get("Age")); err == nil {
		age -= time.Duration(min(n, 1<<31)) * time.Second
	}
	return max(age, 0), true
}

// parseSet reads a JWKS and keeps the keys that can verify signatures. A
// bad key is skipped, not fatal; a set without a usable key is an error,
// so that it never replaces a good set.
func (c *jwksCache) parseSet(body []byte) ([]*pubKey, error) {
	keys, skipped, err := parseJWKSet(body, c.roots, now())
	if err != nil {
		return nil, err
	}
	for _, s := range skipped {
		c.logger.Warn("jwks key skipped", zap.Int("index", s.index), zap.String("key_id", s.kid),
			zap.String("cause", s.cause))
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("key set has no usable key (%d skipped)", len(skipped))
	}
	for _, k := range keys {
		c.reportExpiry(k)
	}
	return keys, nil
}

// skippedKey records why a key of a set was not taken.
type skippedKey struct {
	index int
	kid   string
	cause string
}

// parseJWKSet reads the keys of a JWKS document: signature keys of an
// accepted type and size, at most maxJWKSKeys, and with roots set, only
// those whose x5c chain validates at the given time.
func parseJWKSet(body []byte, roots *x509.CertPool, at time.Time) ([]*pubKey, []skippedKey,
	error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, fmt.Errorf("parsing key set: %w", err)
	}

	var (
		keys    []*pubKey
		skipped []skippedKey
	)
	for i, raw := range doc.Keys {
		if i == maxJWKSKeys {
			skipped = append(skipped, skippedKey{index: i, cause: "too many keys in the set"})
			break
		}
		k, err := parseJWK(raw)
		if err == nil && roots != nil {
			err = verifyChain(k.chain, roots, at)
			// a key trusted for its chain stops verifying when the chain
			// expires, even if the set is not fetched again by then
			k.validUntil = chainExpiry(k.chain)
		}
		if err != nil {
			skipped = append(skipped, skippedKey{index: i, kid: peekKID(raw), cause: err.Error()})
			continue
		}
		k.name = k.kid
		if k.name == "" {
			k.name = "jwks." + strconv.Itoa(i+1)
		}
		keys = append(keys, k)
	}
	return keys, skipped, nil
}

// peekKID reads a key's "kid" for a log line, however broken the key.
func peekKID(raw json.RawMessage) string {
	var v struct {
		Kid string `json:"kid"`
	}
	json.Unmarshal(raw, &v)
	if len(v.Kid) > maxIDLen {
		return v.Kid[:maxIDLen]
	}
	return v.Kid
}

// chainExpiry is when the first certificate of a chain expires.
func chainExpiry(chain []*x509.Certificate) time.Time {
	var at time.Time
	for _, c := range chain {
		if at.IsZero() || c.NotAfter.Before(at) {
			at = c.NotAfter
		}
	}
	return at
}

// verifyChain validates a key's x5c chain, leaf first, against roots.
func verifyChain(chain []*x509.Certificate, roots *x509.CertPool, at time.Time) error {
	if len(chain) == 0 {
		return errors.New("no x5c certificate chain, and trust_roots requires one")
	}
	inter := x509.NewCertPool()
	for _, cert := range chain[1:] {
		inter.AddCert(cert)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("x5c chain: %w", err)
	}
	return nil
}

// parseTrustRoots reads the CA certificates of the trust_roots file at
// path, whose content is pemBytes; without a path it returns nil.
func parseTrustRoots(path string, pemBytes []byte) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("trust_roots: %s holds no PEM certificate", path)
	}
	return pool, nil
}

// reportExpiry logs a key's certificate expiry: at debug always, at warn
// when it is near or past.
func (c *jwksCache) reportExpiry(k *pubKey) {
	if k.notAfter.IsZero() {
		return
	}
	left := k.notAfter.Sub(now())
	level := zap.DebugLevel
	if left < certExpiryWarning {
		level = zap.WarnLevel
	}
	if ce := c.logger.Check(level, "jwks key certificate expiry"); ce != nil {
		ce.Write(zap.String("key_id", k.name), zap.Time("cert_not_after", k.notAfter),
			zap.Duration("cert_expires_in", left))
	}
}
