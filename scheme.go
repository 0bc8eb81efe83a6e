package webhookverify

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
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
}

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
}

// algorithms are the accepted values of the algorithm field.
var algorithms = map[string]algorithm{
	"hmac-sha1":   {newHash: sha1.New},
	"hmac-sha256": {newHash: sha256.New},
	"hmac-sha512": {newHash: sha512.New},
	"token":       {token: true},
}

// signatureSize is the length of the MAC made with alg, or 0 for a token.
func signatureSize(alg algorithm) int {
	if alg.token {
		return 0
	}
	return hmac.New(alg.newHash, nil).Size()
}

// validate checks that a scheme can run, naming the config field at fault.
func (s *scheme) validate() error {
	alg, ok := algorithms[s.algorithm]
	if !ok {
		return fmt.Errorf("algorithm: unknown algorithm %q (want one of hmac-sha1, "+
			"hmac-sha256, hmac-sha512)", s.algorithm)
	}
	if len(s.signatureHeaders) == 0 || s.signatureHeaders[0] == "" {
		return fmt.Errorf("signature_header: required when no preset names one")
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

// hasTimestamp reports whether deliveries of this scheme carry a signed time.
func (s *scheme) hasTimestamp() bool {
	return s.timestampHeader != "" || s.timestampField != "" ||
		s.format == formatStripe || s.format == formatPaddle
}

// firstHeader returns the first non-empty value among the named headers.
func firstHeader(get func(string) string, names []string) string {
	for _, n := range names {
		if v := get(n); v != "" {
			return v
		}
	}
	return ""
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
	return fmt.Sprintf("%s|%s|%q|%d|%s|%s|%s|%s|%s|%s|%q", s.name, s.algorithm,
		s.signatureHeaders, s.format, s.prefix, s.encoding, s.content,
		s.timestampHeader, s.timestampField, s.timestampFormat, s.idHeaders)
}
