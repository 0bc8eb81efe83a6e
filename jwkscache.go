package webhookverify

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// Defaults and bounds of remote key sets.
const (
	defaultJWKSRefresh    = 15 * time.Minute
	defaultJWKSMinRefresh = 30 * time.Second
	defaultJWKSStaleFor   = 24 * time.Hour
	defaultJWKSTimeout    = 10 * time.Second
	// maxJWKSBytes caps a key set response; larger ones are refused.
	maxJWKSBytes = 1 << 20
	// maxJWKSKeys caps the keys taken from one set; the rest are skipped.
	maxJWKSKeys = 100
	// maxJWKSRedirects bounds redirects, which must stay on the same host.
	maxJWKSRedirects = 3
	// storageLoadWait bounds how long a delivery waits for the persisted set
	// to be read after a start.
	storageLoadWait = 5 * time.Second
)

// JWKSSource is a remote key set (JWKS) that the sender publishes. Its keys
// are fetched in the background, refreshed as the sender's Cache-Control
// allows within the bounds below, and kept in Caddy's storage so that a
// restart while the endpoint is down still verifies.
type JWKSSource struct {
	// The HTTPS URL of the key set. Plain http is accepted only to a
	// loopback address (127.0.0.0/8, ::1 or localhost). Redirects are
	// followed only on the same scheme, host and port. Placeholders such as
	// {env.JWKS_URL} are resolved when the configuration loads. Required.
	URL string `json:"url"`

	// The longest time between two background refreshes. A sender's
	// Cache-Control max-age shortens it, down to min_refresh; raise this (up
	// to 24h is sensible) to honour longer max-age values. Default: 15m.
	Refresh caddy.Duration `json:"refresh,omitempty"`

	// The shortest time between two fetches. It is the floor of max-age,
	// the retry interval while the endpoint fails, and the rate limit of
	// the immediate refetch that a message naming an unknown key ID causes:
	// however many such messages arrive, at most one fetch per min_refresh.
	// Default: 30s.
	MinRefresh caddy.Duration `json:"min_refresh,omitempty"`

	// How long past its refresh time the last good set is still used while
	// the endpoint fails, times out, or answers with garbage, an empty set
	// or an oversized body. After that, deliveries get 503 with Retry-After
	// until a fetch succeeds. Default: 24h.
	StaleFor caddy.Duration `json:"stale_for,omitempty"`

	// The limit on one fetch, from connecting to the last byte. Default: 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// A PEM file of CA certificates. When set, a key is used only if its
	// x5c certificate chain validates to one of these roots and its leaf
	// certificate has not expired; keys without x5c are skipped. Default:
	// none, and x5c is not required.
	TrustRoots string `json:"trust_roots,omitempty"`

	// rootsPEM is the trust_roots file as read when the configuration
	// loaded; a reload reads it again, so a replaced file takes effect.
	rootsPEM []byte
}

// jwksCaches holds one cache per key set across handlers and config reloads.
var jwksCaches = caddy.NewUsagePool()

// jwksAfter is the timer of new caches' background loops; tests replace it
// to wake the loops at will instead of waiting.
var jwksAfter = time.After

// provisionJWKS resolves each jwks source and attaches the handler to its
// shared cache, creating the cache (and starting its background fetch) when
// no handler holds it yet. It never waits for a fetch.
func (h *Handler) provisionJWKS(ctx caddy.Context) error {
	repl := caddy.NewReplacer()
	for i, src := range h.JWKS {
		cfg, err := src.resolved(repl)
		if err != nil {
			return fmt.Errorf("jwks: source %d: %w", i+1, err)
		}

		key := cfg.poolKey()
		val, _, err := jwksCaches.LoadOrNew(key, func() (caddy.Destructor, error) {
			return newJWKSCache(cfg, contextStorage(ctx), h.logger)
		})
		if err != nil {
			return fmt.Errorf("jwks: source %d: %w", i+1, err)
		}
		h.caches = append(h.caches, key)
		h.ring.remote = append(h.ring.remote, val.(*jwksCache))
	}
	return nil
}

// releaseJWKS drops one hold on each named cache; the last one stops it.
func releaseJWKS(keys []string) error {
	var errs []error
	for _, k := range keys {
		if _, err := jwksCaches.Delete(k); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// contextStorage is the configured Caddy storage, or nil in a context made
// without a configuration (as in unit tests), where there is nothing to
// persist to.
func contextStorage(ctx caddy.Context) (s certmagic.Storage) {
	defer func() {
		if recover() != nil {
			s = nil
		}
	}()
	return ctx.Storage()
}

// resolved checks a source and fills in its defaults.
func (src *JWKSSource) resolved(repl *caddy.Replacer) (JWKSSource, error) {
	cfg := *src
	raw, err := repl.ReplaceOrErr(src.URL, true, true)
	if err != nil {
		return cfg, fmt.Errorf("url: resolving placeholder: %w", err)
	}
	cfg.URL = raw
	if err := checkJWKSURL(raw); err != nil {
		return cfg, err
	}
	if cfg.TrustRoots != "" {
		if cfg.rootsPEM, err = os.ReadFile(cfg.TrustRoots); err != nil {
			return cfg, fmt.Errorf("trust_roots: %w", err)
		}
	}

	for _, d := range []struct {
		name  string
		field *caddy.Duration
		def   time.Duration
	}{
		{"refresh", &cfg.Refresh, defaultJWKSRefresh},
		{"min_refresh", &cfg.MinRefresh, defaultJWKSMinRefresh},
		{"stale_for", &cfg.StaleFor, defaultJWKSStaleFor},
		{"timeout", &cfg.Timeout, defaultJWKSTimeout},
	} {
		if *d.field < 0 {
			return cfg, fmt.Errorf("%s: must not be negative, got %s", d.name,
				time.Duration(*d.field))
		}
		if *d.field == 0 {
			*d.field = caddy.Duration(d.def)
		}
	}
	if cfg.MinRefresh > cfg.Refresh {
		return cfg, fmt.Errorf("min_refresh: %s is longer than refresh %s",
			time.Duration(cfg.MinRefresh), time.Duration(cfg.Refresh))
	}
	return cfg, nil
}

// checkJWKSURL accepts https URLs, and http URLs to loopback addresses.
// URLs with credentials are refused: they would end up in logs.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("url: %w", err)
	}
	if u.Host == "" {
		return fmt.Errorf("url: %q has no host", raw)
	}
	if u.User != nil {
		return errors.New("url: credentials in the URL are not accepted")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
	}
	return fmt.Errorf("url: %q must be https (plain http only to a loopback address)", raw)
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// poolKey names the cache of a resolved source: handlers share a cache when
// they agree on every setting and on the content of the trust_roots file,
// so that a reload after the CA file changed makes a cache with the new
// roots instead of keeping the old ones.
func (src *JWKSSource) poolKey() string {
	roots := sha256.Sum256(src.rootsPEM)
	return fmt.Sprintf("jwks|%s|%d|%d|%d|%d|%s|%x", src.URL, src.Refresh, src.MinRefresh,
		src.StaleFor, src.Timeout, src.TrustRoots, roots[:8])
}

// cachedSet is one key set as fetched, with when it was last confirmed.
type cachedSet struct {
	keys *keySet
	// goodAt is when the endpoint last served or confirmed (304) this set.
	goodAt time.Time
	// interval is how long after goodAt the set is due for a refresh.
	interval time.Duration
	// raw is the JWKS document, kept for persistence.
	raw []byte
	// etag is the validator the endpoint sent with it.
	etag string
}

// usableUntil is when the set stops being used if no fetch succeeds.
func (cs *cachedSet) usableUntil(staleFor time.Duration) time.Time {
	return cs.goodAt.Add(cs.interval + staleFor)
}

// jwksCache keeps one remote key set fresh. Reads are lock-free; fetches
// are serialised, so concurrent requests for a refetch share one.
type jwksCache struct {
	cfg        JWKSSource
	refresh    time.Duration
	minRefresh time.Duration
	staleFor   time.Duration
	roots      *x509.CertPool
	storage    certmagic.Storage
	storageKey string
	logger     *zap.Logger
	client     *http.Client

	ctx    context.Context
	cancel context.CancelFunc
	// loaded is closed once the persisted set has been read (or not found).
	loaded chan struct{}
	// done is closed when the background loop has returned.
	done chan struct{}
	// after is the loop's timer; tests replace it to drive the loop.
	after func(time.Duration) <-chan time.Time
	// fetches counts requests sent to the endpoint.
	fetches atomic.Int64

	set atomic.Pointer[cachedSet]

	mu          sync.Mutex
	lastAttempt time.Time
	nextAt      time.Time
	failures    int
	inflight    *fetchCall
}

// fetchCall is one fetch that several waiters may share.
type fetchCall struct {
	done chan struct{}
}

// newJWKSCache makes the cache of a resolved source and starts its
// background loop, which first reads the persisted set, then fetches.
func newJWKSCache(cfg JWKSSource, storage certmagic.Storage, logger *zap.Logger) (*jwksCache,
	error) {
	c, err := newIdleJWKSCache(cfg, storage, logger)
	if err != nil {
		return nil, err
	}
	go c.run()
	return c, nil
}

// newIdleJWKSCache makes a cache without starting its loop.
func newIdleJWKSCache(cfg JWKSSource, storage certmagic.Storage,
	logger *zap.Logger) (*jwksCache, error) {
	roots, err := parseTrustRoots(cfg.TrustRoots, cfg.rootsPEM)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(cfg.URL))
	ctx, cancel := context.WithCancel(context.Background())
	c := &jwksCache{
		cfg:        cfg,
		refresh:    time.Duration(cfg.Refresh),
		minRefresh: time.Duration(cfg.MinRefresh),
		staleFor:   time.Duration(cfg.StaleFor),
		roots:      roots,
		storage:    storage,
		storageKey: "webhook_verify/jwks/" + hex.EncodeToString(sum[:16]) + ".json",
		logger:     logger.With(zap.String("jwks_url", cfg.URL)),
		client:     newJWKSClient(time.Duration(cfg.Timeout)),
		ctx:        ctx,
		cancel:     cancel,
		loaded:     make(chan struct{}),
		done:       make(chan struct{}),
		after:      jwksAfter,
	}
	return c, nil
}

// Destruct stops the background loop and any fetch in flight; the pool
// calls it when the last handler using the set is cleaned up.
func (c *jwksCache) Destruct() error {
	c.cancel()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
	c.client.CloseIdleConnections()
	return nil
}

// run is the background loop: read the persisted set, then fetch whenever
// the set is due, until the cache is destroyed.
func (c *jwksCache) run() {
	defer close(c.done)
	c.loadStored()
	close(c.loaded)

	for {
		if wait := c.untilDue(); wait > 0 {
			select {
			case <-c.ctx.Done():
				return
			case <-c.after(wait):
			}
			continue
		}
		c.join(c.ctx, false)
		if c.ctx.Err() != nil {
			return
		}
	}
}

// untilDue is how long until the next background fetch.
func (c *jwksCache) untilDue() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nextAt.Sub(now())
}

// current implements remoteKeys.
func (c *jwksCache) current(ctx context.Context) (*keySet, time.Duration) {
	select {
	case <-c.loaded:
	case <-ctx.Done():
	case <-time.After(storageLoadWait):
	}
	if cs := c.set.Load(); cs != nil && !now().After(cs.usableUntil(c.staleFor)) {
		return cs.keys, 0
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	return nil, max(c.nextAt.Sub(now()), time.Second)
}

// refetch implements remoteKeys. Without a usable set it does nothing:
// the background loop is already retrying every min_refresh, and a
// delivery should get its 503 at once rather than wait on the endpoint.
func (c *jwksCache) refetch(ctx context.Context) {
	cs := c.set.Load()
	if cs == nil || now().After(cs.usableUntil(c.staleFor)) {
		return
	}
	c.join(ctx, true)
}

// join waits for the fetch in flight, or starts one. A forced fetch (an
// unknown key ID) is skipped when any fetch started within min_refresh.
func (c *jwksCache) join(ctx context.Context, forced bool) {
	c.mu.Lock()
	call := c.inflight
	if call == nil {
		if forced && !c.lastAttempt.IsZero() && now().Sub(c.lastAttempt) < c.minRefresh {
			c.mu.Unlock()
			return
		}
		call = &fetchCall{done: make(chan struct{})}
		c.inflight = call
		c.lastAttempt = now()
		go c.runFetch(call, forced)
	}
	c.mu.Unlock()

	select {
	case <-call.done:
	case <-ctx.Done():
	}
}

// runFetch fetches once, installs the result and schedules the next fetch.
func (c *jwksCache) runFetch(call *fetchCall, forced bool) {
	defer close(call.done)

	next, err := c.fetch(c.ctx, forced)

	c.mu.Lock()
	c.inflight = nil
	if err == nil {
		c.failures = 0
		c.nextAt = now().Add(next.interval)
	} else {
		c.failures++
		c.nextAt = now().Add(c.retryDelay())
	}
	failures := c.failures
	c.mu.Unlock()

	if err != nil {
		jwksFetches.WithLabelValues(c.cfg.URL, "error").Inc()
		c.logFailure(err, failures)
		return
	}
	jwksFetches.WithLabelValues(c.cfg.URL, "ok").Inc()
	c.logChanges(c.set.Swap(next), next)
	c.install(next)
	c.persist(next)
}

// install publishes the measures of a newly installed set.
func (c *jwksCache) install(cs *cachedSet) {
	jwksKeys.WithLabelValues(c.cfg.URL).Set(float64(len(cs.keys.keys)))
	keyExpiry.set(c.cfg.URL, nearestExpiry(cs.keys.keys))
}

// logChanges reports the key IDs that a new set adds and removes.
func (c *jwksCache) logChanges(old, cs *cachedSet) {
	if old == nil {
		return
	}
	before, after := kidSet(old.keys), kidSet(cs.keys)
	var added, removed []string
	for kid := range after {
		if !before[kid] {
			added = append(added, kid)
		}
	}
	for kid := range before {
		if !after[kid] {
			removed = append(removed, kid)
		}
	}
	if len(added) > 0 || len(removed) > 0 {
		sort.Strings(added)
		sort.Strings(removed)
		c.logger.Info("jwks keys changed",
			zap.Strings("added", added), zap.Strings("removed", removed),
			zap.Int("keys", len(cs.keys.keys)))
	}
}

// kidSet is the set of key names in s.
func kidSet(s *keySet) map[string]bool {
	m := make(map[string]bool, len(s.keys))
	for _, k := range s.keys {
		m[k.name] = true
	}
	return m
}

// retryDelay is the wait after a failed fetch: min_refresh while no set is
// usable, then doubling up to refresh while a stale set still serves.
// It is called with c.mu held.
func (c *jwksCache) retryDelay() time.Duration {
	cs := c.set.Load()
	if cs == nil || now().After(cs.usableUntil(c.staleFor)) {
		return c.minRefresh
	}
	d := c.minRefresh
	for i := 1; i < c.failures && d < c.refresh; i++ {
		d *= 2
	}
	return min(d, c.refresh)
}

func (c *jwksCache) logFailure(err error, failures int) {
	fields := []zap.Field{zap.Error(err), zap.Int("failures", failures)}
	if cs := c.set.Load(); cs != nil {
		fields = append(fields, zap.Time("stale_until", cs.usableUntil(c.staleFor)))
	} else {
		fields = append(fields, zap.Bool("keys_available", false))
	}
	c.logger.Warn("jwks fetch failed", fields...)
}
