package webhookverify

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler authenticates webhook deliveries before any later handler sees
// them. It reads the body once (up to max_body), checks the signature with
// the configured secrets or public keys (static, or fetched from the
// sender's JWKS), refuses stale timestamps and replayed deliveries,
// and passes the request on with its body and headers byte for byte as the
// sender sent them. Every refusal is a handler error with a status of 400,
// 401, 409, 413 or 503, which handle_errors can shape, and one log line at
// warn level naming the reason.
//
// Choose a provider preset, or describe the scheme with the generic fields;
// generic fields set next to a preset override the preset's values.
//
// The handler sets these placeholders, for later handlers and for
// handle_errors:
//
// Placeholder | Description
// ------------|-------------
// `{http.webhook_verify.verified}` | `true` once the delivery passed every check, else `false`
// `{http.webhook_verify.scheme}` | the preset name, or `generic`
// `{http.webhook_verify.reason}` | why the delivery was refused, empty when it passed
// `{http.webhook_verify.key_id}` | the key ID of the secret or public key that verified it
// `{http.webhook_verify.id}` | the delivery ID header, or the signed nonce of http_signature
// `{http.webhook_verify.timestamp}` | the signed timestamp as the sender wrote it
type Handler struct {
	// The provider whose scheme to use: github, gitea (also Forgejo and
	// Gogs), stripe, slack, shopify, standard_webhooks, twitch, zoom, paddle,
	// linear, square, twilio, gitlab, discord, sendgrid, jws, plaid or
	// http_signature (RFC 9421 HTTP Message Signatures, with the policy of
	// label, covered and require_tag). Empty selects the generic scheme
	// described by the fields below. standard_webhooks verifies its
	// asymmetric "v1a" signatures (Ed25519) when public keys are configured
	// instead of secrets.
	Preset string `json:"preset,omitempty"`

	// The shared secrets, for HMAC schemes. A delivery passes if any one of
	// them verifies it, so a new secret can be added before the sender
	// switches to it and the old one removed afterwards. At most 16. Each
	// handler needs secrets, or public_keys or jwks, not both.
	Secrets []Secret `json:"secrets,omitempty"`

	// Public keys, for schemes in which the sender signs with its private
	// key. A delivery passes if any one of them verifies it; a key with a
	// key ID is only tried for messages naming that ID (or naming none).
	// At most 64 keys, counting each key of a JWKS file.
	PublicKeys []PublicKey `json:"public_keys,omitempty"`

	// Remote key sets: the sender's JWKS endpoints. Keys are fetched in the
	// background and shared by every handler that names the same URL with
	// the same settings; until a first set arrives, deliveries get 503 with
	// Retry-After. Keys named in messages (jku, x5u, jwk) are never used.
	JWKS []*JWKSSource `json:"jwks,omitempty"`

	// The request header in which a message names the key that signed it,
	// for signatures over signed_content. A named key that no source holds
	// makes the JWKS sources refetch at once (rate-limited by min_refresh),
	// then gives 401 unknown_key. Without it, every key is tried.
	KeyIDHeader string `json:"key_id_header,omitempty"`

	// How the signature is laid out: raw (default: the bytes the algorithm
	// defines, 64 for Ed25519, r||s for ECDSA), der (an ASN.1 ECDSA
	// signature), jws_detached (a compact JWS with a detached payload, the
	// body, RFC 7515 Appendix F; "b64": false per RFC 7797 is accepted), or
	// jws_compact (a compact JWS or JWT whose claims carry a SHA-256 of the
	// body and an issued-at time, as Plaid sends).
	SignatureFormat string `json:"signature_format,omitempty"`

	// The claim of a jws_compact token that holds the hex SHA-256 of the
	// body. Default: request_body_sha256.
	BodyHashClaim string `json:"body_hash_claim,omitempty"`

	// How the secret values are written: raw (the text itself), hex or
	// base64. With base64, a "whsec_" prefix is dropped before decoding.
	// Default: the preset's native form (base64 for standard_webhooks, raw
	// for every other preset and for the generic scheme).
	SecretEncoding string `json:"secret_encoding,omitempty"`

	// The largest body accepted, in bytes. Larger deliveries get 413 and are
	// not forwarded; no more than this is ever buffered. Default: 10 MiB.
	MaxBody int64 `json:"max_body,omitempty"`

	// How far a signed timestamp may be from this server's clock, in either
	// direction, before the delivery is refused as stale or from the future.
	// Default: the provider's documented tolerance (5m for most, 10m for
	// twitch, 1m for linear, 5s for paddle); 5m for the generic scheme.
	Tolerance caddy.Duration `json:"tolerance,omitempty"`

	// The store of seen deliveries that refuses replays. Default: the memory
	// store, which is private to this Caddy instance.
	ReplayRaw json.RawMessage `json:"replay,omitempty" caddy:"namespace=http.handlers.webhook_verify.replay inline_key=store"`

	// Turns replay protection off. A delivery with a valid signature and a
	// fresh timestamp is then forwarded however often it arrives.
	DisableReplay bool `json:"disable_replay,omitempty"`

	// Answers the provider's endpoint handshake in place of the application:
	// Zoom's endpoint.url_validation (with the HMAC of the plain token),
	// Slack's url_verification and Twitch's webhook_callback_verification
	// (by echoing the challenge). Only handshakes whose signature verifies
	// are answered; they are not forwarded. Default: off, the handshake is
	// forwarded like any delivery.
	Challenge bool `json:"challenge,omitempty"`

	// What to do when the replay store fails, for example when Redis cannot
	// be reached: "reject" (default) refuses the delivery with 503, so the
	// sender retries later; "allow" forwards it without the replay check.
	// Every such event is logged and counted either way.
	OnStoreError string `json:"on_store_error,omitempty"`

	// How long a delivery is remembered after it was accepted. Default:
	// twice the tolerance plus one minute for schemes with a signed
	// timestamp, which covers every moment the same delivery stays fresh;
	// 24h for schemes without one (github, gitea, shopify, gitlab), whose
	// deliveries can be replayed once this window has passed.
	ReplayWindow caddy.Duration `json:"replay_window,omitempty"`

	// The signing algorithm. With secrets: hmac-sha256 (default),
	// hmac-sha512 or hmac-sha1 (only for a sender that offers nothing
	// better). With public keys: ed25519, ecdsa-p256-sha256,
	// ecdsa-p384-sha384, ecdsa-p521-sha512, rsa-pkcs1-sha256 (also -sha384,
	// -sha512) or rsa-pss-sha256 (also -sha384, -sha512). For the JWS
	// formats, the JOSE algorithms allowed, separated by spaces, such as
	// "EdDSA ES256"; default: every asymmetric JOSE algorithm (EdDSA, ES256,
	// ES384, ES512, PS256, PS384, PS512, RS256, RS384, RS512). "none" and
	// HMAC algorithms are never accepted with public keys.
	Algorithm string `json:"algorithm,omitempty"`

	// The request header that carries the signature. Required for the
	// generic scheme.
	SignatureHeader string `json:"signature_header,omitempty"`

	// Text in front of the signature in its header, such as "sha256=";
	// it must be present.
	SignaturePrefix string `json:"signature_prefix,omitempty"`

	// How the signature is written: hex (default), base64 or base64url.
	SignatureEncoding string `json:"signature_encoding,omitempty"`

	// The bytes the sender signs, as a template. Placeholders: {body} (the
	// raw body, required exactly once), {id}, {timestamp}, {method}, {url}
	// (scheme, host and the original request URI) and {header.Name}.
	// Default: "{body}".
	SignedContent string `json:"signed_content,omitempty"`

	// The request header that carries the signed timestamp. When set, the
	// timestamp must be covered by signed_content and lie within tolerance.
	TimestampHeader string `json:"timestamp_header,omitempty"`

	// How the timestamp is written: unix (seconds, default), unix_ms or
	// rfc3339.
	TimestampFormat string `json:"timestamp_format,omitempty"`

	// The request header that carries the delivery ID. When signed_content
	// covers {id}, the ID identifies the delivery for replay protection;
	// otherwise it is only logged and exposed as a placeholder.
	IDHeader string `json:"id_header,omitempty"`

	// The label of the RFC 9421 signature to verify, for http_signature.
	// Default: any label whose signature meets the policy below.
	Label string `json:"label,omitempty"`

	// The components every accepted http_signature must cover, such as
	// @method, @target-uri, @authority or content-digest; an entry with
	// parameters names that exact identifier, as "@query-param";name="id".
	// A covered Content-Digest is always checked against the body.
	// Default: content-digest, so that the body is signed.
	Covered []string `json:"covered,omitempty"`

	// The value the "tag" parameter of an http_signature must have, to
	// tell this application's signatures from others made with the same
	// key. Default: any tag, or none.
	RequireTag string `json:"require_tag,omitempty"`

	// The scheme, host and port that the sender signed, such as
	// https://hooks.example.com, when Caddy sits behind another proxy or
	// load balancer that changes them. Used by http_signature (@target-uri,
	// @authority, @scheme), twilio, square and the {url} placeholder of
	// signed_content. Default: the scheme of this connection and the Host
	// header; or, for requests from one of the server's trusted_proxies,
	// X-Forwarded-Proto and X-Forwarded-Host.
	ExternalOrigin string `json:"external_origin,omitempty"`

	scheme       scheme
	hs           *httpSigPolicy
	originScheme string
	originHost   string
	alg          algorithm
	tmpl         *template
	sigSize      int
	keys         []*hmacKey
	pub          *pubAlg
	der          bool
	jws          bool
	joseAlgs     []string
	joseSigAlgs  []jose.SignatureAlgorithm
	ring         *keyRing
	caches       []string
	tolerance    time.Duration
	window       time.Duration
	namespace    string
	signsID      bool
	signsURL     bool
	store        ReplayStore
	storeName    string
	logger       *zap.Logger
	rejects      *rejectLog
	events       *caddyevents.App
	ctx          caddy.Context

	acceptedCount prometheus.Counter
	durationObs   prometheus.Observer
}

// Default limits.
const (
	defaultMaxBody      = 10 << 20
	defaultTolerance    = 5 * time.Minute
	defaultUnsignedTime = 24 * time.Hour
	// maxTolerance and maxReplayWindow keep the windows meaningful and their
	// sums far from overflowing a time.Duration.
	maxTolerance    = 7 * 24 * time.Hour
	maxReplayWindow = 366 * 24 * time.Hour
	// maxInFlight bounds how long a reservation blocks copies of a delivery
	// whose upstream has not answered yet.
	maxInFlight = 5 * time.Minute
)

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.webhook_verify",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision builds the scheme, decodes the secrets and loads the replay store.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.ctx = ctx
	h.logger = ctx.Logger()
	registerMetrics(ctx.GetMetricsRegistry(), h.logger)
	h.rejects = newRejectLog(h.logger, rejectRate, rejectBurst)
	go h.rejects.flushLoop(ctx.Done())

	events, err := ctx.App("events")
	if err != nil {
		return fmt.Errorf("loading events app: %w", err)
	}
	h.events = events.(*caddyevents.App)

	if err := h.validateLimits(); err != nil {
		return err
	}
	if h.MaxBody == 0 {
		h.MaxBody = defaultMaxBody
	}

	if err := h.provisionScheme(); err != nil {
		return err
	}
	h.acceptedCount = verifications.WithLabelValues(h.scheme.name, "accepted", "")
	h.durationObs = verifyDuration.WithLabelValues(h.scheme.name)
	if err := h.validateChallenge(); err != nil {
		return err
	}

	if err := h.provisionKeys(ctx); err != nil {
		return err
	}

	return h.provisionReplay(ctx)
}

// validateLimits checks the numeric fields, which cannot be negative.
func (h *Handler) validateLimits() error {
	switch {
	case h.MaxBody < 0:
		return fmt.Errorf("max_body: must not be negative, got %d", h.MaxBody)
	case h.Tolerance < 0:
		return fmt.Errorf("tolerance: must not be negative, got %s", time.Duration(h.Tolerance))
	case h.ReplayWindow < 0:
		return fmt.Errorf("replay_window: must not be negative, got %s",
			time.Duration(h.ReplayWindow))
	case h.Tolerance > caddy.Duration(maxTolerance):
		return fmt.Errorf("tolerance: at most %s, got %s", maxTolerance,
			time.Duration(h.Tolerance))
	case h.ReplayWindow > caddy.Duration(maxReplayWindow):
		return fmt.Errorf("replay_window: at most %s, got %s", maxReplayWindow,
			time.Duration(h.ReplayWindow))
	}
	return nil
}

// Validate checks the provisioned handler.
func (h *Handler) Validate() error {
	if err := h.validateLimits(); err != nil {
		return err
	}
	if len(h.keys) == 0 && h.ring == nil {
		return fmt.Errorf("secrets, public_keys or jwks: at least one source of keys is required")
	}
	return nil
}

// ServeHTTP verifies the delivery and passes it on, or refuses it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	start := time.Now()
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	buf := getBuffer()

	var d delivery
	rsn := h.verify(r, &d, buf)
	if rsn == "" && h.answerChallenge(w, r, &d) {
		putBuffer(buf)
		h.setPlaceholders(repl, &d, "")
		verifications.WithLabelValues(h.scheme.name, "challenge", "").Inc()
		return nil
	}
	var keys []string
	if rsn == "" {
		keys, rsn = h.reserve(r, &d)
	}
	h.durationObs.Observe(time.Since(start).Seconds())
	if rsn != "" {
		putBuffer(buf)
		if rsn == reasonKeysUnavailable {
			w.Header().Set("Retry-After", retryAfterSeconds(d.retryAfter))
		}
		return h.reject(r, repl, &d, rsn)
	}

	h.acceptedCount.Inc()
	h.setPlaceholders(repl, &d, "")
	if c := h.logger.Check(zapcore.DebugLevel, "webhook verified"); c != nil {
		c.Write(h.deliveryFields(r, &d)...)
	}

	r.Body = newReplayBody(buf)
	rec := &statusRecorder{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
	err := next.ServeHTTP(rec, r)

	if len(keys) > 0 {
		h.settle(r, keys, upstreamFailed(r, rec.status, err))
	}
	return err
}

// Cleanup releases this configuration's hold on the shared JWKS caches.
func (h *Handler) Cleanup() error {
	keys := h.caches
	h.caches = nil
	return releaseJWKS(keys)
}

// retryAfterSeconds writes a delay as whole seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(max(1, int64((d+time.Second-1)/time.Second)), 10)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
