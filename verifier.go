package webhookverify

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"time"
)

// reason is why a delivery was refused. The set is closed: the same names
// appear in logs, in the {http.webhook_verify.reason} placeholder and in the
// error that handle_errors sees.
type reason string

const (
	reasonMissingSignature   reason = "missing_signature"
	reasonMalformedSignature reason = "malformed_signature"
	reasonInvalidSignature   reason = "invalid_signature"
	reasonMissingTimestamp   reason = "missing_timestamp"
	reasonMalformedTimestamp reason = "malformed_timestamp"
	reasonStaleTimestamp     reason = "stale_timestamp"
	reasonFutureTimestamp    reason = "future_timestamp"
	reasonMissingID          reason = "missing_id"
	reasonMalformedID        reason = "malformed_id"
	reasonBodyTooLarge       reason = "body_too_large"
	reasonBodyUnreadable     reason = "body_unreadable"
	reasonDuplicate          reason = "duplicate_delivery"
	reasonReplayStoreError   reason = "replay_store_error"
	reasonUnknownKey         reason = "unknown_key"
	reasonKeysUnavailable    reason = "keys_unavailable"
	reasonDisallowedAlg      reason = "disallowed_algorithm"

	// Reasons of RFC 9421 message signatures and the URL-signing schemes.
	reasonDigestMismatch       reason = "content_digest_mismatch"
	reasonUncovered            reason = "uncovered_component"
	reasonMissingComponent     reason = "missing_component"
	reasonUnsupportedComponent reason = "unsupported_component"
	reasonTagMismatch          reason = "tag_mismatch"
	reasonExpiredSignature     reason = "expired_signature"
)

// reasonStatus is the HTTP status sent for each reason: 400 for what cannot
// be read, 401 for what does not authenticate, 409 for a replay, 413 for a
// body over the limit and 503 when the check itself could not run, so that
// the sender retries later.
var reasonStatus = map[reason]int{
	reasonMissingSignature:   http.StatusUnauthorized,
	reasonMalformedSignature: http.StatusBadRequest,
	reasonInvalidSignature:   http.StatusUnauthorized,
	reasonMissingTimestamp:   http.StatusUnauthorized,
	reasonMalformedTimestamp: http.StatusBadRequest,
	reasonStaleTimestamp:     http.StatusUnauthorized,
	reasonFutureTimestamp:    http.StatusUnauthorized,
	reasonMissingID:          http.StatusUnauthorized,
	reasonMalformedID:        http.StatusBadRequest,
	reasonBodyTooLarge:       http.StatusRequestEntityTooLarge,
	reasonBodyUnreadable:     http.StatusBadRequest,
	reasonDuplicate:          http.StatusConflict,
	reasonReplayStoreError:   http.StatusServiceUnavailable,
	reasonUnknownKey:         http.StatusUnauthorized,
	reasonKeysUnavailable:    http.StatusServiceUnavailable,
	reasonDisallowedAlg:      http.StatusUnauthorized,

	reasonDigestMismatch:       http.StatusUnauthorized,
	reasonUncovered:            http.StatusUnauthorized,
	reasonMissingComponent:     http.StatusUnauthorized,
	reasonUnsupportedComponent: http.StatusBadRequest,
	reasonTagMismatch:          http.StatusUnauthorized,
	reasonExpiredSignature:     http.StatusUnauthorized,
}

// rejection is the error a refused delivery returns to Caddy. Its text is the
// reason only, so nothing of the request leaks through {http.error.message}.
type rejection struct {
	reason reason
}

func (r rejection) Error() string { return "webhook_verify: " + string(r.reason) }

// maxIDLen bounds a delivery ID; provider IDs are UUIDs or similar tokens.
const maxIDLen = 256

// delivery is what the verifier learned about one request.
type delivery struct {
	body []byte
	// signed stands for {body} in the signed content when the scheme signs
	// something else than the raw body (twilio's form parameters).
	signed    []byte
	id        string
	timestamp string
	method    string
	url       string
	header    http.Header

	// keyID names the first secret that verified the delivery.
	keyID string
	// matches are the keys that verified the delivery, each with what it
	// verified; the replay guard keys the delivery under each.
	matches []match
	// retryAfter is how long a sender should wait when no key is available.
	retryAfter time.Duration
}

// match is one key that verified a delivery.
type match struct {
	// id names the key in logs and placeholders.
	id string
	// fingerprint names the key in replay keys without revealing it; it
	// stays the same across reloads and while other keys rotate.
	fingerprint string
	// sig is the signature the key verified; for public keys, a digest of
	// the signed content, which re-encoding a signature cannot change.
	sig []byte
	// key is the secret, for HMAC schemes.
	key *hmacKey
}

// verify runs the checks of the pipeline up to, not including, the replay
// store, reading the body into buf. It returns the reason for refusal, or
// the empty reason when the delivery is authentic and fresh.
func (h *Handler) verify(r *http.Request, d *delivery, buf *bytes.Buffer) reason {
	if h.hs != nil {
		return h.verifyHTTPSig(r, d, buf)
	}
	d.id = firstHeader(r.Header, h.scheme.idHeaders)
	if len(d.id) > maxIDLen {
		d.id = ""
		return reasonMalformedID
	}
	if r.ContentLength > h.MaxBody {
		return reasonBodyTooLarge
	}

	value := firstHeader(r.Header, h.scheme.signatureHeaders)
	if value == "" {
		return reasonMissingSignature
	}

	var material signatureMaterial
	if !h.alg.token && !h.jws {
		var rsn reason
		if material, rsn = h.scheme.parseSignature(value, h.sigSize); rsn != "" {
			return rsn
		}
	}

	if rsn := h.readHeaders(r, d, material); rsn != "" {
		return rsn
	}

	if rsn := readBody(r, h.MaxBody, buf); rsn != "" {
		return rsn
	}
	d.body = buf.Bytes()
	if h.scheme.bodyForm == bodyTwilio {
		if rsn := twilioContent(r, d); rsn != "" {
			return rsn
		}
	}

	switch {
	case h.alg.token:
		return h.checkToken(value, d)
	case h.jws:
		return h.checkJWS(r, value, d)
	case h.pub != nil:
		if rsn := h.checkPublic(r, material.sigs, d); rsn != "" {
			return rsn
		}
	default:
		if rsn := h.checkSignature(material.sigs, d); rsn != "" {
			return rsn
		}
	}
	return h.checkBodyTimestamp(d)
}

// readHeaders fills in the timestamp and request parts of d, and checks
// the timestamp when the scheme carries it outside the body.
func (h *Handler) readHeaders(r *http.Request, d *delivery, m signatureMaterial) reason {
	d.method = r.Method
	d.header = r.Header
	if h.signsURL {
		d.url = h.externalURL(r)
	}

	if d.id == "" && h.signsID {
		return reasonMissingID
	}

	switch {
	case m.timestamp != "":
		d.timestamp = m.timestamp
	case h.scheme.timestampHeader != "":
		d.timestamp = firstHeader(r.Header, h.scheme.timestampHeaders)
	default:
		return ""
	}
	return checkTimestamp(d.timestamp, h.scheme.timestampFormat, now(), h.tolerance)
}

// checkSignature computes the MAC of the signed content with each secret and
// compares it in constant time with each signature the sender offered. Every
// secret is tried, not only until the first match: a delivery signed for two
// configured secrets is remembered under both, so that stripping one of its
// signatures does not make a replay look new.
func (h *Handler) checkSignature(sigs [][]byte, d *delivery) reason {
	var sum [64]byte
	for _, k := range h.keys {
		mac := k.mac()
		h.tmpl.write(mac, d)
		got := mac.Sum(sum[:0])
		k.putMAC(mac)

		for _, sig := range sigs {
			if hmac.Equal(got, sig) {
				d.matches = append(d.matches, k.match(sig))
				break
			}
		}
	}
	return d.matched()
}

// checkToken compares a shared token with each secret in constant time.
func (h *Handler) checkToken(token string, d *delivery) reason {
	sum := sha256.Sum256([]byte(token))
	for _, k := range h.keys {
		if subtle.ConstantTimeCompare(sum[:], k.tokenSum[:]) == 1 {
			d.matches = append(d.matches, k.match(nil))
		}
	}
	return d.matched()
}

// matched names the first matching secret, or refuses an unmatched delivery.
func (d *delivery) matched() reason {
	if len(d.matches) == 0 {
		return reasonInvalidSignature
	}
	d.keyID = d.matches[0].id
	return ""
}

// checkBodyTimestamp checks a timestamp that the scheme keeps in the body. It
// runs after the signature, so only authenticated bodies are parsed.
func (h *Handler) checkBodyTimestamp(d *delivery) reason {
	if h.scheme.timestampField == "" {
		return ""
	}
	raw, ok := jsonField(d.body, h.scheme.timestampField)
	if !ok {
		return reasonMissingTimestamp
	}
	d.timestamp = raw
	return checkTimestamp(raw, h.scheme.timestampFormat, now(), h.tolerance)
}

// replayKeys name the delivery in the replay store, once for each secret
// that verified it, so that senders with different secrets never collide.
// Under each secret the delivery is named by its ID when the signature
// covers it, else by the signature itself (or, for a shared token, which is
// the same on every delivery, by the body). An ID that the signature does
// not cover can be changed by anyone, so it never decides alone.
func (h *Handler) replayKeys(d *delivery) []string {
	keys := make([]string, 0, len(d.matches))
	var sum [sha256.Size]byte
	for _, m := range d.matches {
		prefix := h.namespace + m.fingerprint + ":"
		switch {
		case h.hs != nil && d.id != "":
			// the signed nonce
			keys = append(keys, prefix+"nonce:"+d.id)
		case h.signsID:
			keys = append(keys, prefix+"id:"+d.id)
		case h.alg.token:
			sum = sha256.Sum256(d.body)
			keys = append(keys, prefix+"body:"+hex.EncodeToString(sum[:]))
		default:
			sum = sha256.Sum256(m.sig)
			keys = append(keys, prefix+"sig:"+hex.EncodeToString(sum[:]))
		}
	}
	return keys
}

// maxPresize bounds how much buffer a declared Content-Length reserves before
// any byte of the body arrived: a sender that only claims a large body must
// not make the handler allocate it.
const maxPresize = 64 << 10

// readBody reads at most limit+1 bytes of the body into buf, enough to tell a
// body over the limit, and never asks the sender for more. The buffer grows
// only as bytes arrive; pooled buffers are usually large enough already.
func readBody(r *http.Request, limit int64, buf *bytes.Buffer) reason {
	if r.Body == nil || r.Body == http.NoBody {
		return ""
	}
	if r.ContentLength > 0 {
		buf.Grow(int(min(r.ContentLength+1, maxPresize)))
	}

	for {
		room := limit + 1 - int64(buf.Len())
		if buf.Available() == 0 {
			buf.Grow(int(min(int64(max(buf.Len(), 512)), room)))
		}
		p := buf.AvailableBuffer()
		p = p[:min(int64(cap(p)), room)]
		n, err := r.Body.Read(p)
		buf.Write(p[:n])

		var tooBig *http.MaxBytesError
		switch {
		case int64(buf.Len()) > limit, errors.As(err, &tooBig):
			return reasonBodyTooLarge
		case err == io.EOF:
			return ""
		case err != nil:
			return reasonBodyUnreadable
		}
	}
}
