package webhookverify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"
)

// FuzzParseDERSignature feeds attacker bytes to the strict DER reader: it
// must never panic, and what it accepts must be two positive integers.
func FuzzParseDERSignature(f *testing.F) {
	f.Add([]byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})
	f.Add([]byte{0x30, 0x80, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00, 0x00})
	f.Add([]byte{0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01})
	f.Fuzz(func(t *testing.T, sig []byte) {
		r, s, ok := parseDERSignature(sig)
		if ok && (r.Sign() <= 0 || s.Sign() <= 0) {
			t.Fatalf("accepted non-positive r or s from %x", sig)
		}
		splitECDSA(sig, 32, false)
		rawAlgorithms["ecdsa-p256-sha256"].verify(newFuzzKey(), nil, make([]byte, 32), sig, true)
	})
}

var fuzzKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

func newFuzzKey() any { return &fuzzKey.PublicKey }

// FuzzSignatureHeader parses attacker header values in every layout.
func FuzzSignatureHeader(f *testing.F) {
	f.Add("v1a,AAAA v1,BBBB")
	f.Add("t=1,v1=abcd")
	f.Add("ts=1;h1=ab")
	f.Add("sha256=00")
	f.Fuzz(func(t *testing.T, value string) {
		for _, name := range []string{"stripe", "paddle", "github"} {
			s := presets[name]
			s.parseSignature(value, 32)
		}
		for _, name := range []string{"standard_webhooks", "sendgrid", "discord"} {
			s := publicPresets[name]
			s.parseSignature(value, 0)
			s.parseSignature(value, 64)
		}
	})
}

// FuzzJWS runs attacker JWS values through the detached and compact paths
// of a provisioned handler; none may panic or be accepted.
func FuzzJWS(f *testing.F) {
	f.Add("eyJhbGciOiJFZERTQSJ9..AAAA", "body")
	f.Add("eyJhbGciOiJFUzI1NiJ9.e30.AAAA", "")
	f.Add("eyJhbGciOiJub25lIn0.e30.", "x")
	f.Add("eyJhbGciOiJFZERTQSIsImI2NCI6ZmFsc2UsImNyaXQiOlsiYjY0Il19..AA", "$.02")
	pub, _ := newEd25519(f)
	detached := provisioned(f, &Handler{Preset: "jws", DisableReplay: true,
		PublicKeys: []PublicKey{{Value: jwkJSON(f, pub, "k")}}})
	compact := provisioned(f, &Handler{Preset: "jws", SignatureFormat: "jws_compact",
		DisableReplay: true, PublicKeys: []PublicKey{{Value: jwkJSON(f, pub, "k")}}})
	old := now
	now = func() time.Time { return testClock }
	f.Cleanup(func() { now = old })

	f.Fuzz(func(t *testing.T, value, body string) {
		for _, h := range []*Handler{detached, compact} {
			if serveQuiet(h, map[string]string{"X-JWS-Signature": value}, body) == 200 {
				t.Fatalf("accepted forged JWS %q over %q", value, body)
			}
		}
	})
}
