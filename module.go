package webhookverify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler authenticates webhook deliveries before any later handler sees
// them. It reads the body once (up to max_body), checks the signature with
// the configured secrets, refuses stale timestamps and replayed deliveries,
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
// `{http.webhook_verify.key_id}` | the key ID of the secret that verified it
// `{http.webhook_verify.id}` | the delivery ID header, if the scheme has one
// `{http.webhook_verify.timestamp}` | the signed timestamp as the sender wrote it
type Handler struct {
	// The provider whose scheme to use: github, gitea (also Forgejo and
	// Gogs), stripe, slack, shopify, standard_webhooks, twitch, zoom, paddle,
	// linear or gitlab. Empty selects the generic scheme described by the
	// fields below.
	Preset string `json:"preset,omitempty"`

	// The shared secrets. A delivery passes if any one of them verifies it,
	// so a new secret can be added before the sender switches to it and the
	// old one removed afterwards. At least one is required, at most 16.
	Secrets []Secret `json:"secrets,omitempty"`

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

	// The signing algorithm: hmac-sha256 (default), hmac-sha512 or
	// hmac-sha1. Use hmac-sha1 only for a sender that offers nothing better.
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

	scheme    scheme
	alg       algorithm
	tmpl      *template
	sigSize   int
	keys      []*hmacKey
	tolerance time.Duration
	window    time.Duration
	namespace string
	signsID   bool
	signsURL  bool
	store     ReplayStore
	storeName string
	logger    *zap.Logger
	rejects   *rejectLog
	events    *caddyevents.App
	ctx       caddy.Context
}

// Default limits.
const (
	defaultMaxBody      = 10 << 20
	defaultTolerance    = 5 * time.Minute
	defaultUnsignedTime = 24 * time.Hour
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
	if err := h.validateChallenge(); err != nil {
		return err
	}

	if len(h.Secrets) == 0 {
		return fmt.Errorf("secrets: at least one secret is required")
	}
	if len(h.Secrets) > maxSecrets {
		return fmt.Errorf("secrets: at most %d secrets, got %d", maxSecrets, len(h.Secrets))
	}
	keys, err := resolveSecrets(h.Secrets, h.scheme.secretEncoding, h.alg)
	if err != nil {
		return err
	}
	h.keys = keys

	return h.provisionReplay(ctx)
}

// provisionScheme starts from the preset, or the generic defaults, and lays
// the configured generic fields over it.
func (h *Handler) provisionScheme() error {
	s := scheme{
		name:            "generic",
		algorithm:       "hmac-sha256",
		encoding:        "hex",
		content:         "{body}",
		timestampFormat: "unix",
		tolerance:       defaultTolerance,
		secretEncoding:  "raw",
	}
	if h.Preset != "" {
		p, ok := presets[h.Preset]
		if !ok {
			return fmt.Errorf("preset: unknown preset %q (want one of %s)",
				h.Preset, strings.Join(presetNames, ", "))
		}
		s = p
		s.name = h.Preset
	}
	h.overrideScheme(&s)

	if err := s.validate(); err != nil {
		return err
	}
	h.scheme = s
	h.alg = algorithms[s.algorithm]
	h.sigSize = signatureSize(h.alg)
	h.tolerance = s.tolerance
	if !h.alg.token {
		h.tmpl, _ = parseTemplate(s.content)
		h.signsID = h.tmpl.uses(partID)
		h.signsURL = h.tmpl.uses(partURL)
	}
	return nil
}

// overrideScheme applies the generic fields that are set.
func (h *Handler) overrideScheme(s *scheme) {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&s.algorithm, h.Algorithm)
	set(&s.prefix, h.SignaturePrefix)
	set(&s.encoding, h.SignatureEncoding)
	set(&s.content, h.SignedContent)
	set(&s.timestampHeader, h.TimestampHeader)
	set(&s.timestampFormat, h.TimestampFormat)
	set(&s.secretEncoding, h.SecretEncoding)
	if h.SignatureHeader != "" {
		s.signatureHeaders = []string{h.SignatureHeader}
	}
	if h.IDHeader != "" {
		s.idHeaders = []string{h.IDHeader}
	}
	if h.Tolerance > 0 {
		s.tolerance = time.Duration(h.Tolerance)
	}
	if s.tolerance == 0 {
		s.tolerance = defaultTolerance
	}
}

// provisionReplay loads the replay store and works out how long entries live.
func (h *Handler) provisionReplay(ctx caddy.Context) error {
	sum := sha256.Sum256([]byte(h.scheme.describe()))
	h.namespace = "webhook_verify:" + hex.EncodeToString(sum[:8]) + ":"

	h.window = time.Duration(h.ReplayWindow)
	if h.window == 0 {
		h.window = defaultUnsignedTime
		if h.scheme.hasTimestamp() {
			h.window = 2*h.tolerance + time.Minute
		}
	}
	if h.scheme.hasTimestamp() && h.window < 2*h.tolerance {
		h.logger.Warn("replay window shorter than twice the tolerance; a delivery can be "+
			"replayed while its timestamp is still fresh",
			zap.Duration("replay_window", h.window), zap.Duration("tolerance", h.tolerance))
	}

	if h.OnStoreError != "" && h.OnStoreError != "reject" && h.OnStoreError != "allow" {
		return fmt.Errorf("on_store_error: unknown action %q (want reject or allow)",
			h.OnStoreError)
	}
	if h.DisableReplay {
		if h.ReplayRaw != nil {
			return fmt.Errorf("replay: a store is configured but disable_replay is set")
		}
		return nil
	}
	if h.ReplayRaw == nil {
		h.ReplayRaw = json.RawMessage(`{"store":"memory"}`)
	}
	mod, err := ctx.LoadModule(h, "ReplayRaw")
	if err != nil {
		return fmt.Errorf("replay: loading replay store: %w", err)
	}
	store, ok := mod.(ReplayStore)
	if !ok {
		return fmt.Errorf("replay: module %T is not a replay store", mod)
	}
	h.store = store
	h.storeName = strings.TrimPrefix(string(mod.(caddy.Module).CaddyModule().ID),
		"http.handlers.webhook_verify.replay.")
	return nil
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
	}
	return nil
}

// Validate checks the provisioned handler.
func (h *Handler) Validate() error {
	if err := h.validateLimits(); err != nil {
		return err
	}
	if len(h.keys) == 0 {
		return fmt.Errorf("secrets: at least one secret is required")
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
	verifyDuration.WithLabelValues(h.scheme.name).Observe(time.Since(start).Seconds())
	if rsn != "" {
		putBuffer(buf)
		return h.reject(r, repl, &d, rsn)
	}

	verifications.WithLabelValues(h.scheme.name, "accepted", "").Inc()
	h.setPlaceholders(repl, &d, "")
	if c := h.logger.Check(zapcore.DebugLevel, "webhook verified"); c != nil {
		c.Write(h.deliveryFields(r, &d)...)
	}

	r.Body = newReplayBody(buf)
	rec := &statusRecorder{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
	err := next.ServeHTTP(rec, r)

	if len(keys) > 0 {
		h.settle(r, keys, upstreamFailed(r, rec.status, err))
	}
	return err
}

// reject logs the refusal, counts it, emits an event for it and returns it
// as a handler error.
func (h *Handler) reject(r *http.Request, repl *caddy.Replacer, d *delivery, rsn reason) error {
	status := reasonStatus[rsn]
	h.setPlaceholders(repl, d, rsn)
	verifications.WithLabelValues(h.scheme.name, "rejected", string(rsn)).Inc()

	fields := append(h.deliveryFields(r, d), zap.String("reason", string(rsn)))
	h.rejects.write(fields)

	if h.events != nil {
		h.events.Emit(h.ctx, "webhook_rejected", map[string]any{
			"scheme":    h.scheme.name,
			"reason":    string(rsn),
			"status":    status,
			"key_id":    d.keyID,
			"id":        d.id,
			"remote_ip": remoteIP(r),
			"uri":       r.RequestURI,
		})
	}
	return caddyhttp.Error(status, rejection{reason: rsn})
}

// deliveryFields are the log fields that describe a delivery. They hold no
// secret, signature or body.
func (h *Handler) deliveryFields(r *http.Request, d *delivery) []zap.Field {
	return []zap.Field{
		zap.String("scheme", h.scheme.name),
		zap.String("key_id", d.keyID),
		zap.String("id", d.id),
		zap.String("remote_ip", remoteIP(r)),
		zap.String("uri", r.RequestURI),
	}
}

func (h *Handler) setPlaceholders(repl *caddy.Replacer, d *delivery, rsn reason) {
	repl.Set("http.webhook_verify.verified", rsn == "")
	repl.Set("http.webhook_verify.scheme", h.scheme.name)
	repl.Set("http.webhook_verify.reason", string(rsn))
	repl.Set("http.webhook_verify.key_id", d.keyID)
	repl.Set("http.webhook_verify.id", d.id)
	repl.Set("http.webhook_verify.timestamp", d.timestamp)
}

// remoteIP is the address of the connection's peer, without its port.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// statusRecorder notes the status that later handlers send, to tell whether
// the application took the delivery.
type statusRecorder struct {
	*caddyhttp.ResponseWriterWrapper
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriterWrapper.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriterWrapper.Write(b)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
