package webhookverify

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"net/http"
	"net/textproto"
	"strings"
	"time"
)

// scheme describes one way of signing a delivery: where the signature is,
// how it is written, which algorithm makes it and which bytes it covers.
// Presets are values of this type; the generic form is built from the
// handler's fields. The engine in verifier.go runs every scheme the same way.
type scheme struct {
	name string

	// algorithm is one of the names in algorithms.
	algorithm string

	// signatureHeaders are tried in order; the first one present is used.
	signatureHeaders []string

	// format says how the signature header is laid out.
	format headerFormat

	// prefix is stripped from a plain signature header value and must be there.
	prefix string

	// encoding is how the signature bytes are written: hex, base64, base64url.
	encoding string

	// content is the signed-content template.
	content string

	// timestampHeader names the header carrying the signed timestamp, when
	// the timestamp is not inside the signature header or the body.
	timestampHeader string

	// timestampHeaders holds timestampHeader in canonical form, once the
	// scheme is provisioned.
	timestampHeaders []string

	// timestampField names a top-level JSON field of the body that carries
	// the timestamp; it is checked after the signature, since only then is
	// the body trusted enough to parse.
	timestampField string

	// timestampFormat is unix, unix_ms or rfc3339.
	timestampFormat string

	// idHeaders name the delivery ID header; the first one present is used.
	idHeaders []string

	// tolerance is the provider's documented clock skew allowance.
	tolerance time.Duration

	// secretEncoding is how the provider hands out its secrets.
	secretEncoding string

	// sigFormat is raw (the default) or der for public-key signatures over
	// the signed content, or jws_detached or jws_compact.
	sigFormat string

	// keyIDHeader names the header in which a message names its key.
	keyIDHeader string

	// version is the Standard Webhooks signature version read: v1 (HMAC,
	// the default) or v1a (Ed25519).
	version string

	// bodyHashClaim is the jws_compact claim holding the body's SHA-256.
	bodyHashClaim string

	// bodyForm says what {body} stands for when it is not the raw body.
	bodyForm bodyForm
}

// bodyForm names what a scheme signs in place of the raw body.
type bodyForm int

const (
	// bodyRaw signs the body as it arrived.
	bodyRaw bodyForm = iota
	// bodyTwilio signs sorted form parameters, or nothing when the URL
	// carries the body's hash (see twilio.go).
	bodyTwilio
)

// headerFormat names the layout of a signature header.
type headerFormat int

const (
	// formatPlain is one signature, optionally behind a fixed prefix.
	formatPlain headerFormat = iota
	// formatStripe is "t=<unix>,v1=<hex>[,v1=<hex>...]" with other keys ignored.
	formatStripe
	// formatPaddle is "ts=<unix>;h1=<hex>[;h1=<hex>...]".
	formatPaddle
	// formatStandard is "v1,<base64>[ v1,<base64>...]" with other versions ignored.
	formatStandard
)

// algorithm describes a signing algorithm known to the engine.
type algorithm struct {
	newHash func() hash.Hash
	// token marks a shared token compared as a whole, not a signature.
	token bool
	// pub is set for public-key algorithms, which verify with public keys
	// instead of secrets.
	pub *pubAlg
}

// algorithms are the accepted values of the algorithm field for signatures
// over signed_content; the public-key ones are added from rawAlgorithms.
var algorithms = map[string]algorithm{
	"hmac-sha1":   {newHash: sha1.New},
	"hmac-sha256": {newHash: sha256.New},
	"hmac-sha512": {newHash: sha512.New},
	"token":       {token: true},
}

func init() {
	for name, pa := range rawAlgorithms {
		alg := algorithm{pub: pa}
		if pa.hash != 0 {
			alg.newHash = pa.hash.New
		}
		algorithms[name] = alg
	}
}

// algorithmNames lists the algorithm values for error messages.
const algorithmNames = "hmac-sha256, hmac-sha512, hmac-sha1, ed25519, ecdsa-p256-sha256, " +
	"ecdsa-p384-sha384, ecdsa-p521-sha512, rsa-pkcs1-sha256, rsa-pkcs1-sha384, " +
	"rsa-pkcs1-sha512, rsa-pss-sha256, rsa-pss-sha384 or rsa-pss-sha512"

// signatureSize is the length of the signature made with alg, or 0 for a
// token and for signatures whose length depends on the key or encoding.
func signatureSize(alg algorithm, format string) int {
	switch {
	case alg.token:
		return 0
	case alg.pub != nil:
		return alg.pub.rawSize(format == "der")
	}
	return hmac.New(alg.newHash, nil).Size()
}

// isJWS reports whether the signature is a JWS rather than bytes over
// signed_content.
func (s *scheme) isJWS() bool {
	return s.sigFormat == "jws_detached" || s.sigFormat == "jws_compact"
}

// standardVersion is the Standard Webhooks signature version to read.
func (s *scheme) standardVersion() string {
	if s.version == "" {
		return "v1"
	}
	return s.version
}

// validate checks that a scheme can run, naming the config field at fault.
func (s *scheme) validate() error {
	if len(s.signatureHeaders) == 0 || s.signatureHeaders[0] == "" {
		return fmt.Errorf("signature_header: required when no preset names one")
	}
	if s.isJWS() {
		return s.validateJWS()
	}
	alg, ok := algorithms[s.algorithm]
	if !ok {
		return fmt.Errorf("algorithm: unknown algorithm %q (want one of %s)",
			s.algorithm, algorithmNames)
	}
	if err := s.validateFormat(alg); err != nil {
		return err
	}
	if alg.token {
		return nil
	}
	if _, ok := signatureDecoders[s.encoding]; !ok {
		return fmt.Errorf("signature_encoding: unknown encoding %q "+
			"(want hex, base64 or base64url)", s.encoding)
	}
	tmpl, err := parseTemplate(s.content)
	if err != nil {
		return fmt.Errorf("signed_content: %w", err)
	}
	if tmpl.uses(partTimestamp) && !s.hasTimestamp() {
		return fmt.Errorf("signed_content: uses {timestamp} but no timestamp_header is set")
	}
	if s.hasTimestamp() && s.timestampField == "" && !tmpl.uses(partTimestamp) {
		return fmt.Errorf("timestamp_header: the timestamp is not covered by signed_content; " +
			"an unsigned timestamp cannot prove freshness, add {timestamp} to signed_content")
	}
	if tmpl.uses(partID) && len(s.idHeaders) == 0 {
		return fmt.Errorf("signed_content: uses {id} but no id_header is set")
	}
	if s.hasTimestamp() {
		if _, ok := timestampParsers[s.timestampFormat]; !ok {
			return fmt.Errorf("timestamp_format: unknown format %q "+
				"(want unix, unix_ms or rfc3339)", s.timestampFormat)
		}
	}
	return nil
}

// validateFormat checks signature_format and key_id_header for a signature
// over signed_content.
func (s *scheme) validateFormat(alg algorithm) error {
	switch s.sigFormat {
	case "", "raw":
	case "der":
		if alg.pub == nil || alg.pub.family != familyECDSA {
			return fmt.Errorf("signature_format: der applies to the ecdsa-* algorithms only, "+
				"not %s", s.algorithm)
		}
	default:
		return fmt.Errorf("signature_format: unknown format %q "+
			"(want raw, der, jws_detached or jws_compact)", s.sigFormat)
	}
	if s.keyIDHeader != "" && alg.pub == nil {
		return fmt.Errorf("key_id_header: applies to public-key algorithms only, not %s",
			s.algorithm)
	}
	return nil
}

// hasTimestamp reports whether deliveries of this scheme carry a signed time.
func (s *scheme) hasTimestamp() bool {
	return s.timestampHeader != "" || s.timestampField != "" ||
		s.format == formatStripe || s.format == formatPaddle || s.sigFormat == "jws_compact" ||
		s.sigFormat == httpSigPreset
}

// firstHeader returns the first non-empty value among the named headers,
// whose names canonicalize has put in canonical form beforehand, so that no
// request pays for it.
func firstHeader(h http.Header, names []string) string {
	for _, n := range names {
		if v := h[n]; len(v) > 0 && v[0] != "" {
			return v[0]
		}
	}
	return ""
}

// canonicalize writes the scheme's header names in canonical form, in new
// slices: a preset's own lists are shared and stay as they are.
func (s *scheme) canonicalize() {
	canonical := func(names []string) []string {
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = textproto.CanonicalMIMEHeaderKey(n)
		}
		return out
	}
	s.signatureHeaders = canonical(s.signatureHeaders)
	s.idHeaders = canonical(s.idHeaders)
	s.timestampHeaders = nil
	if s.timestampHeader != "" {
		s.timestampHeaders = []string{textproto.CanonicalMIMEHeaderKey(s.timestampHeader)}
	}
}

// splitList splits s on sep, trimming the spaces around each element.
func splitList(s string, sep byte) []string {
	parts := strings.Split(s, string(sep))
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// describe is a canonical text of the scheme. Handlers with equal schemes
// share a replay namespace, so that instances with the same configuration
// refuse each other's replays, while different senders never collide.
func (s *scheme) describe() string {
	d := fmt.Sprintf("%s|%s|%q|%d|%s|%s|%s|%s|%s|%s|%q", s.name, s.algorithm,
		s.signatureHeaders, s.format, s.prefix, s.encoding, s.content,
		s.timestampHeader, s.timestampField, s.timestampFormat, s.idHeaders)
	// appended only when set, so that HMAC schemes keep their namespaces
	if s.sigFormat != "" || s.keyIDHeader != "" || s.version != "" || s.bodyHashClaim != "" ||
		s.bodyForm != bodyRaw {
		d += fmt.Sprintf("|%s|%s|%s|%s|%d", s.sigFormat, s.keyIDHeader, s.version,
			s.bodyHashClaim, s.bodyForm)
	}
	return d
}
