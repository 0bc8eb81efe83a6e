package webhookverify

// Provisioning steps of the handler: the scheme, its keys and its replay store.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// publicKeyed reports whether the handler is configured with public keys.
func (h *Handler) publicKeyed() bool {
	return len(h.PublicKeys) > 0 || len(h.JWKS) > 0
}

// provisionKeys loads the secrets, or the public keys and key sets, that
// the scheme's algorithm verifies with.
func (h *Handler) provisionKeys(ctx caddy.Context) error {
	public := h.publicKeyed()
	if !public && len(h.Secrets) == 0 {
		return fmt.Errorf("secrets, public_keys or jwks: at least one source of keys is required")
	}
	if h.hs != nil {
		return h.provisionHTTPSigKeys(ctx)
	}
	if h.pub == nil && !h.jws {
		if public {
			return fmt.Errorf("public_keys, jwks: algorithm %s verifies with secrets; use "+
				"secrets, or set a public-key algorithm", h.scheme.algorithm)
		}
		return h.provisionSecrets()
	}

	if len(h.Secrets) > 0 {
		return fmt.Errorf("secrets: algorithm %q verifies with public keys; configure "+
			"public_keys or jwks instead", h.scheme.algorithm)
	}
	if !public {
		return fmt.Errorf("public_keys, jwks: algorithm %q needs at least one public key "+
			"or key set", h.scheme.algorithm)
	}
	return h.provisionPublicKeys(ctx)
}

// provisionSecrets decodes the shared secrets.
func (h *Handler) provisionSecrets() error {
	return h.provisionSecretsFor(h.alg)
}

// provisionSecretsFor decodes the shared secrets for the given algorithm.
func (h *Handler) provisionSecretsFor(alg algorithm) error {
	if len(h.Secrets) > maxSecrets {
		return fmt.Errorf("secrets: at most %d secrets, got %d", maxSecrets, len(h.Secrets))
	}
	keys, err := resolveSecrets(h.Secrets, h.scheme.secretEncoding, alg)
	if err != nil {
		return err
	}
	h.keys = keys
	return nil
}

// provisionPublicKeys parses the static public keys, checks that each fits
// the algorithm, and attaches the shared JWKS caches.
func (h *Handler) provisionPublicKeys(ctx caddy.Context) error {
	keys, err := resolvePublicKeys(h.PublicKeys)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if !h.keyUsable(k) {
			return fmt.Errorf("public_keys: key %s is an %s key, which algorithm %q cannot "+
				"use", k.name, keyKind(k.key), h.scheme.algorithm)
		}
		h.warnCertExpiry(k)
	}
	h.ring = &keyRing{static: newKeySet(keys)}

	return h.provisionJWKS(ctx)
}

// keyUsable reports whether the handler's algorithm (or, for JWS, any
// allowed algorithm) can verify with k.
func (h *Handler) keyUsable(k *pubKey) bool {
	if h.pub != nil {
		return h.pub.allows(k)
	}
	for _, name := range h.joseAlgs {
		if joseAlgorithms[name].allows(k) {
			return true
		}
	}
	return false
}

// provisionScheme starts from the preset, or the generic defaults, and lays
// the configured generic fields over it.
func (h *Handler) provisionScheme() error {
	if err := h.provisionOrigin(); err != nil {
		return err
	}
	if h.Preset == httpSigPreset {
		return h.provisionHTTPSig()
	}
	if h.Label != "" || len(h.Covered) > 0 || h.RequireTag != "" {
		return fmt.Errorf("label, covered, require_tag: apply to the %s preset only",
			httpSigPreset)
	}
	s := scheme{
		name:            "generic",
		encoding:        "hex",
		content:         "{body}",
		timestampFormat: "unix",
		tolerance:       defaultTolerance,
		secretEncoding:  "raw",
	}
	if h.Preset != "" {
		p, ok := presets[h.Preset]
		if pp, public := publicPresets[h.Preset]; public && (!ok || h.publicKeyed()) {
			p, ok = pp, true
		}
		if !ok {
			return fmt.Errorf("preset: unknown preset %q (want one of %s)",
				h.Preset, strings.Join(presetNames, ", "))
		}
		s = p
		s.name = h.Preset
	}
	h.overrideScheme(&s)
	if s.algorithm == "" {
		s.algorithm = "hmac-sha256"
		if s.isJWS() {
			s.algorithm = defaultJOSEAlgorithms
		}
	}
	if s.sigFormat == "jws_compact" && s.bodyHashClaim == "" {
		s.bodyHashClaim = defaultBodyHashClaim
	}

	if err := s.validate(); err != nil {
		return err
	}
	if h.SignedContent != "" {
		if t, err := parseTemplate(h.SignedContent); err == nil {
			if err := t.checkSeparated(); err != nil {
				return fmt.Errorf("signed_content: %w", err)
			}
		}
	}
	s.canonicalize()
	h.scheme = s
	h.tolerance = s.tolerance
	if s.isJWS() {
		h.jws = true
		h.joseAlgs = strings.Fields(s.algorithm)
		h.joseSigAlgs = joseSignatureAlgorithms(h.joseAlgs)
		return nil
	}
	h.alg = algorithms[s.algorithm]
	h.pub = h.alg.pub
	h.der = s.sigFormat == "der"
	h.sigSize = signatureSize(h.alg, s.sigFormat)
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
	set(&s.sigFormat, h.SignatureFormat)
	set(&s.keyIDHeader, h.KeyIDHeader)
	set(&s.bodyHashClaim, h.BodyHashClaim)
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
	if s, ok := mod.(interface{ scope(string) error }); ok {
		return s.scope(h.replayScope())
	}
	return nil
}

// replayScope names this handler configuration for stores private to it:
// its scheme and the identities of its keys, never the keys themselves.
func (h *Handler) replayScope() string {
	parts := []string{h.namespace}
	for _, k := range h.keys {
		parts = append(parts, k.fingerprint)
	}
	for _, pk := range h.PublicKeys {
		parts = append(parts, "pk:"+pk.Value)
	}
	for _, src := range h.JWKS {
		parts = append(parts, "jwks:"+src.URL)
	}
	sort.Strings(parts[1:])
	sum := sha256.Sum256([]byte(strings.Join(parts, "\n")))
	return hex.EncodeToString(sum[:8])
}
