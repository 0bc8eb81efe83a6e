package webhookverify

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// maxJWSLen bounds a JWS header value before any parsing. A compact JWS in
// a header holds a small header, a few claims and one signature.
const maxJWSLen = 16 << 10

// defaultBodyHashClaim is the jws_compact claim with the body's SHA-256.
const defaultBodyHashClaim = "request_body_sha256"

// validateJWS checks the fields of the JWS formats: an allowlist of JOSE
// algorithms, none of them "none" or HMAC, and a signed content that is the
// body itself.
func (s *scheme) validateJWS() error {
	names := strings.Fields(s.algorithm)
	if len(names) == 0 {
		return fmt.Errorf("algorithm: %s needs at least one JOSE algorithm", s.sigFormat)
	}
	for _, name := range names {
		if _, ok := joseAlgorithms[name]; !ok {
			return fmt.Errorf("algorithm: %s is not accepted for %s (want JOSE names among "+
				"%s; none and HMAC never verify with public keys)", name, s.sigFormat,
				defaultJOSEAlgorithms)
		}
	}
	if s.content != "{body}" {
		return fmt.Errorf("signed_content: %s signs the body itself; leave it unset", s.sigFormat)
	}
	if s.timestampHeader != "" || s.timestampField != "" {
		return fmt.Errorf("timestamp_header: %s carries its own signed time (iat); an unsigned "+
			"timestamp header cannot prove freshness", s.sigFormat)
	}
	if s.keyIDHeader != "" {
		return fmt.Errorf("key_id_header: %s names its key in the JWS header (kid)", s.sigFormat)
	}
	if s.format != formatPlain || s.prefix != "" {
		return fmt.Errorf("signature_prefix: %s takes the JWS as the whole header value",
			s.sigFormat)
	}
	return nil
}

// joseSignatureAlgorithms converts the allowlist for go-jose.
func joseSignatureAlgorithms(names []string) []jose.SignatureAlgorithm {
	algs := make([]jose.SignatureAlgorithm, len(names))
	for i, n := range names {
		algs[i] = jose.SignatureAlgorithm(n)
	}
	return algs
}

// checkJWS verifies a detached or compact JWS. The algorithm named in the
// JWS header must be on the allowlist and fit the key, and the key comes
// from configuration or the JWKS, never from the message (jku, x5u and jwk
// headers are ignored).
func (h *Handler) checkJWS(r *http.Request, value string, d *delivery) reason {
	obj, rsn := h.parseJWS(strings.TrimSpace(value), d.body)
	if rsn != "" {
		return rsn
	}
	sig := obj.Signatures[0]
	alg := joseAlgorithms[sig.Header.Algorithm]
	if len(sig.Header.KeyID) > maxIDLen {
		return reasonMalformedSignature
	}
	d.keyID = sig.Header.KeyID

	cands, rsn, retry := h.ring.find(r.Context(), sig.Header.KeyID, alg.allows)
	if rsn != "" {
		d.retryAfter = retry
		return rsn
	}

	for _, k := range cands {
		payload, ok := verifyJWS(obj, h.scheme.sigFormat, d.body, k.key)
		if !ok {
			continue
		}
		d.matches = append(d.matches, k.match(jwsDigest(value, d.body)))
		d.keyID = k.name
		if h.scheme.sigFormat == "jws_compact" {
			return h.checkClaims(payload, d)
		}
		return h.checkHeaderTime(sig.Protected, d)
	}
	return reasonInvalidSignature
}

// parseJWS reads the JWS for the scheme's format, refusing algorithms off
// the allowlist and, for an unencoded payload, a "b64" not marked critical.
func (h *Handler) parseJWS(value string, body []byte) (*jose.JSONWebSignature, reason) {
	if value == "" || len(value) > maxJWSLen {
		return nil, reasonMalformedSignature
	}
	var (
		obj *jose.JSONWebSignature
		err error
	)
	if h.scheme.sigFormat == "jws_detached" {
		obj, err = jose.ParseDetached(value, nonNil(body), h.joseSigAlgs)
	} else {
		obj, err = jose.ParseSignedCompact(value, h.joseSigAlgs)
	}
	var unexpected *jose.ErrUnexpectedSignatureAlgorithm
	switch {
	case errors.As(err, &unexpected):
		return nil, reasonDisallowedAlg
	case err != nil, len(obj.Signatures) != 1:
		return nil, reasonMalformedSignature
	}
	if !b64Declared(obj.Signatures[0].Protected) {
		return nil, reasonMalformedSignature
	}
	return obj, ""
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// b64Declared checks RFC 7797's rule: a "b64" header must be listed in
// "crit", so that a receiver that does not know it refuses the message.
func b64Declared(hdr jose.Header) bool {
	if _, ok := hdr.ExtraHeaders["b64"]; !ok {
		return true
	}
	crit, _ := hdr.ExtraHeaders["crit"].([]any)
	return slices.Contains(crit, any("b64"))
}

// verifyJWS checks obj with one key; for a compact JWS it returns the
// verified payload.
func verifyJWS(obj *jose.JSONWebSignature, format string, body []byte, key any) ([]byte, bool) {
	if format == "jws_detached" {
		return nil, obj.DetachedVerify(nonNil(body), key) == nil
	}
	payload, err := obj.Verify(key)
	return payload, err == nil
}

// jwsDigest names a JWS delivery for the replay guard by what was verified:
// the decoded protected header and payload, and the body, without the
// signature, which an ECDSA signer's re-encoding could change. Decoding
// first matters: the JWS library removes whitespace and ignores the spare
// bits of the last base64 character, so many texts carry one signature.
func jwsDigest(value string, body []byte) []byte {
	parts := strings.Split(strings.Join(strings.Fields(value), ""), ".")
	h := sha256.New()
	for _, p := range parts[:max(len(parts)-1, 0)] {
		raw, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil {
			raw = []byte(p)
		}
		h.Write(raw)
		h.Write([]byte{0})
	}
	h.Write(body)
	return h.Sum(nil)
}

// checkClaims checks a verified jws_compact payload: the body hash claim
// must match the body, "iat" must lie within tolerance, "exp" (if present)
// must not have passed.
func (h *Handler) checkClaims(payload []byte, d *delivery) reason {
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(payload, &claims); err != nil {
		return reasonInvalidSignature
	}

	var hexSum string
	if json.Unmarshal(claims[h.scheme.bodyHashClaim], &hexSum) != nil {
		return reasonInvalidSignature
	}
	want, err := hex.DecodeString(hexSum)
	sum := sha256.Sum256(d.body)
	if err != nil || subtle.ConstantTimeCompare(want, sum[:]) != 1 {
		return reasonInvalidSignature
	}

	iat, ok := claims["iat"]
	if !ok {
		return reasonMissingTimestamp
	}
	d.timestamp = string(iat)
	if rsn := checkTimestamp(d.timestamp, "unix", now(), h.tolerance); rsn != "" {
		return rsn
	}
	if exp, ok := claims["exp"]; ok {
		n, err := parseDigits(string(exp))
		if err != nil || now().Unix() >= n {
			return reasonStaleTimestamp
		}
	}
	return ""
}

// checkHeaderTime checks an "iat" in a detached JWS's protected header,
// when the sender put one there; without one the scheme has no signed time.
func (h *Handler) checkHeaderTime(hdr jose.Header, d *delivery) reason {
	v, ok := hdr.ExtraHeaders["iat"]
	if !ok {
		return ""
	}
	f, ok := v.(float64)
	if !ok || f < 0 || f > math.MaxInt32*4 || f != math.Trunc(f) {
		return reasonMalformedTimestamp
	}
	d.timestamp = strconv.FormatInt(int64(f), 10)
	return checkTimestamp(d.timestamp, "unix", now(), h.tolerance)
}
