package webhookverify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dunglas/httpsfv"

	"github.com/webhookverify/caddy-webhook-verify/internal/testkeys"
)

// rfcVectors is testdata/rfc9421/vectors.json.
type rfcVectors struct {
	Messages   map[string]rfcMessage `json:"messages"`
	Signatures []rfcSignature        `json:"signatures"`
}

type rfcMessage struct {
	Method    string      `json:"method"`
	TargetURI string      `json:"target_uri"`
	Status    int         `json:"status"`
	Headers   [][2]string `json:"headers"`
	Body      string      `json:"body"`
}

type rfcSignature struct {
	Name           string   `json:"name"`
	Message        string   `json:"message"`
	Key            string   `json:"key"`
	Alg            string   `json:"alg"`
	Label          string   `json:"label"`
	Deterministic  bool     `json:"deterministic"`
	SignatureInput string   `json:"signature_input"`
	Signature      string   `json:"signature"`
	Base           []string `json:"base"`
}

func loadRFCVectors(t *testing.T) rfcVectors {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "rfc9421", "vectors.json"))
	if err != nil {
		t.Fatalf("reading vectors: %v", err)
	}
	var v rfcVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decoding vectors: %v", err)
	}
	return v
}

// message turns a vector message into what the base builder reads.
func (m rfcMessage) message(t *testing.T) *sigMessage {
	t.Helper()
	hdr := http.Header{}
	for _, h := range m.Headers {
		hdr.Add(h[0], h[1])
	}
	if m.Status != 0 {
		return &sigMessage{status: m.Status, header: hdr}
	}
	u, err := url.Parse(m.TargetURI)
	if err != nil {
		t.Fatalf("parsing %s: %v", m.TargetURI, err)
	}
	return &sigMessage{
		method: m.Method, scheme: u.Scheme, authority: normalizeAuthority(u.Scheme, u.Host),
		target: u.RequestURI(), path: u.EscapedPath(), query: u.RawQuery,
		hasQuery: u.ForceQuery || u.RawQuery != "", header: hdr,
	}
}

// member parses one label of a dictionary field.
func member(t *testing.T, field, label string) httpsfv.Member {
	t.Helper()
	d, err := httpsfv.UnmarshalDictionary([]string{field})
	if err != nil {
		t.Fatalf("parsing %q: %v", field, err)
	}
	m, ok := d.Get(label)
	if !ok {
		t.Fatalf("label %s missing from %q", label, field)
	}
	return m
}

// rfcPublicKey reads a public key of RFC 9421 Appendix B.1.
func rfcPublicKey(t *testing.T, name string) *pubKey {
	t.Helper()
	keys, err := readKeyFile(filepath.Join("testdata", "rfc9421", name+".pem"))
	if err != nil || len(keys) != 1 {
		t.Fatalf("reading %s: %v", name, err)
	}
	return keys[0]
}

// rfcSecret is test-shared-secret of RFC 9421 Appendix B.1.5, decoded.
func rfcSecret(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "rfc9421", "test-shared-secret.b64"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// rfcPrivateKey reads a private key of RFC 9421 Appendix B.1. The RSA-PSS
// key is PKCS#8 with the RSASSA-PSS algorithm identifier, which x509 does
// not read, so its inner PKCS#1 key is taken out by hand.
func rfcPrivateKey(t *testing.T, name string) crypto.Signer {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "rfc9421", name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := testkeys.ParsePrivatePEM(raw)
	if err != nil {
		t.Fatalf("parsing %s: %v", name, err)
	}
	return key.(crypto.Signer)
}

// TestRFC9421Vectors rebuilds the signature base of every published
// signature, verifies each signature, and reproduces the deterministic ones
// (HMAC, Ed25519, RSA PKCS#1 v1.5) byte for byte.
func TestRFC9421Vectors(t *testing.T) {
	v := loadRFCVectors(t)
	for _, sv := range v.Signatures {
		t.Run(sv.Name, func(t *testing.T) {
			msg := v.Messages[sv.Message].message(t)
			input := member(t, sv.SignatureInput, sv.Label).(httpsfv.InnerList)
			sig := member(t, sv.Signature, sv.Label).(httpsfv.Item).Value.([]byte)

			base, rsn := signatureBase(msg, input)
			if rsn != "" {
				t.Fatalf("building base: %s", rsn)
			}
			if want := strings.Join(sv.Base, "\n"); string(base) != want {
				t.Fatalf("base =\n%s\nwant\n%s", base, want)
			}

			if sv.Alg == "hmac-sha256" {
				m := hmac.New(sha256.New, rfcSecret(t))
				m.Write(base)
				if !hmac.Equal(m.Sum(nil), sig) {
					t.Fatal("HMAC does not reproduce the published signature")
				}
				return
			}
			c := sigCandidate{alg: sv.Alg, pub: rfcPublicKey(t, sv.Key)}
			if _, ok := c.verify(base, sig); !ok {
				t.Fatal("published signature does not verify")
			}
			if sv.Deterministic {
				if got := rfcSign(t, sv.Alg, rfcPrivateKey(t, sv.Key), base); string(got) !=
					string(sig) {
					t.Fatalf("signing reproduces %x, want %x", got[:8], sig[:8])
				}
			}
		})
	}
}

// rfcSign signs a base as RFC 9421 Section 3.3 defines each algorithm.
func rfcSign(t *testing.T, alg string, key crypto.Signer, base []byte) []byte {
	t.Helper()
	var (
		sig []byte
		err error
	)
	switch alg {
	case "ed25519":
		sig = ed25519.Sign(key.(ed25519.PrivateKey), base)
	case "rsa-v1_5-sha256":
		sum := sha256.Sum256(base)
		sig, err = rsa.SignPKCS1v15(nil, key.(*rsa.PrivateKey), crypto.SHA256, sum[:])
	case "rsa-pss-sha512":
		h := crypto.SHA512.New()
		h.Write(base)
		sig, err = rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA512, h.Sum(nil),
			&rsa.PSSOptions{SaltLength: 64})
	case "ecdsa-p256-sha256":
		sum := sha256.Sum256(base)
		r, s, e := ecdsa.Sign(rand.Reader, key.(*ecdsa.PrivateKey), sum[:])
		sig, err = make([]byte, 64), e
		if e == nil {
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
		}
	default:
		t.Fatalf("no signer for %s", alg)
	}
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	return sig
}

// TestRFC9421Tampered checks that a published signature fails once any
// covered part of its message changes.
func TestRFC9421Tampered(t *testing.T) {
	v := loadRFCVectors(t)
	sv := v.Signatures[5] // B.2.6, Ed25519
	msg := v.Messages[sv.Message].message(t)
	input := member(t, sv.SignatureInput, sv.Label).(httpsfv.InnerList)
	sig := member(t, sv.Signature, sv.Label).(httpsfv.Item).Value.([]byte)
	c := sigCandidate{alg: sv.Alg, pub: rfcPublicKey(t, sv.Key)}

	msg.path = "/bar"
	base, _ := signatureBase(msg, input)
	if _, ok := c.verify(base, sig); ok {
		t.Fatal("signature verified over a changed path")
	}
}
