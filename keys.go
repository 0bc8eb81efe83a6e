package webhookverify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
)

// maxSecrets bounds how many secrets one handler may try per delivery.
const maxSecrets = 16

// Secret is one shared secret. Several may be configured while a secret is
// rotated; a delivery passes if any one of them verifies it.
type Secret struct {
	// The secret as the provider shows it, written in secret_encoding.
	// Placeholders such as {env.WEBHOOK_SECRET} and {file./run/secrets/hook}
	// are resolved once when the configuration loads, so the secret need not
	// appear in the configuration. It is never logged.
	Value string `json:"value"`

	// A name for this secret in logs, metrics and placeholders, so operators
	// can see which secret a sender still uses. Default: its position in the
	// list, starting at 1.
	KeyID string `json:"key_id,omitempty"`
}

// hmacKey is a provisioned secret: its name and a pool of MACs keyed with it,
// so no request pays for deriving the HMAC key schedule again.
type hmacKey struct {
	id string
	// fingerprint names the secret in replay keys without revealing it; it
	// stays the same across reloads and while other secrets rotate.
	fingerprint string
	macs        sync.Pool
	// tokenSum is the SHA-256 of a shared token; comparing digests of equal
	// length keeps the comparison time independent of the token's length.
	tokenSum [32]byte
}

// newHMACKey prepares a decoded secret for the given algorithm.
func newHMACKey(id string, secret []byte, alg algorithm) *hmacKey {
	fp := sha256.Sum256(append([]byte("webhook_verify replay namespace\x00"), secret...))
	k := &hmacKey{id: id, fingerprint: hex.EncodeToString(fp[:8])}
	if alg.token {
		k.tokenSum = sha256.Sum256(secret)
		return k
	}
	k.macs.New = func() any { return hmac.New(alg.newHash, secret) }
	return k
}

// match records that this secret verified sig.
func (k *hmacKey) match(sig []byte) match {
	return match{id: k.id, fingerprint: k.fingerprint, sig: sig, key: k}
}

// mac returns a reset MAC keyed with this secret; give it back with putMAC.
func (k *hmacKey) mac() hash.Hash {
	h := k.macs.Get().(hash.Hash)
	h.Reset()
	return h
}

func (k *hmacKey) putMAC(h hash.Hash) { k.macs.Put(h) }

// resolveSecrets expands placeholders in the configured secrets, decodes
// them and prepares them for the algorithm.
func resolveSecrets(secrets []Secret, encoding string, alg algorithm) ([]*hmacKey, error) {
	raws, err := resolveSecretBytes(secrets, encoding)
	if err != nil {
		return nil, err
	}
	keys := make([]*hmacKey, len(raws))
	for i, raw := range raws {
		keys[i] = newHMACKey(secretID(i, secrets[i]), raw, alg)
	}
	return keys, nil
}

// resolveSecretBytes expands placeholders and decodes each secret. Errors
// name the secret by position or key ID, never by its value.
func resolveSecretBytes(secrets []Secret, encoding string) ([][]byte, error) {
	repl := caddy.NewReplacer()
	raws := make([][]byte, 0, len(secrets))
	seen := make(map[string]bool, len(secrets))

	for i, s := range secrets {
		id := secretID(i, s)
		if seen[id] {
			return nil, fmt.Errorf("secrets: key_id %q is used twice", id)
		}
		seen[id] = true

		value, err := repl.ReplaceOrErr(s.Value, true, true)
		if err != nil {
			return nil, placeholderError(id, s.Value, err)
		}
		raw, err := decodeSecret(value, encoding)
		if err != nil {
			return nil, fmt.Errorf("secrets: secret %s: %w", id, err)
		}
		raws = append(raws, raw)
	}
	return raws, nil
}

// placeholderError reports a secret whose placeholders did not resolve. The
// replacer's message quotes the text between braces, which is part of the
// secret when the braces are literal, so it is passed on only when the whole
// value is one placeholder, such as {env.HOOK_SECRET}.
func placeholderError(id, value string, err error) error {
	if strings.HasPrefix(value, "{") && strings.IndexByte(value[1:], '{') < 0 &&
		strings.IndexByte(value, '}') == len(value)-1 {
		return fmt.Errorf("secrets: secret %s: resolving placeholder: %w", id, err)
	}
	return fmt.Errorf("secrets: secret %s: a placeholder in its value is unknown or empty "+
		"(write literal braces as \\{ and \\})", id)
}

// secretID is the key ID of the i-th secret: its own, or its position.
func secretID(i int, s Secret) string {
	if s.KeyID != "" {
		return s.KeyID
	}
	return strconv.Itoa(i + 1)
}

// decodeSecret turns a secret written in the given encoding into key bytes.
// A "whsec_" prefix is part of the key for raw secrets (Stripe keys its MAC
// with the whole string) and is dropped for base64 ones (Standard Webhooks
// keys its MAC with the decoded bytes after it).
func decodeSecret(value, encoding string) ([]byte, error) {
	if value == "" {
		return nil, fmt.Errorf("secret is empty")
	}

	var (
		key []byte
		err error
	)
	switch encoding {
	case "raw":
		key = []byte(value)
	case "hex":
		key, err = hex.DecodeString(value)
	case "base64":
		value = strings.TrimPrefix(value, "whsec_")
		key, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(value, "="))
	default:
		return nil, fmt.Errorf("secret_encoding: unknown encoding %q (want raw, hex or base64)",
			encoding)
	}
	if err != nil {
		return nil, fmt.Errorf("secret is not valid %s", encoding)
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("secret decodes to no bytes")
	}
	return key, nil
}
