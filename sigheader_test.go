package webhookverify

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func TestParseSignature(t *testing.T) {
	sig := strings.Repeat("ab", 32)
	sig2 := strings.Repeat("cd", 32)
	raw, _ := hex.DecodeString(sig)
	raw2, _ := hex.DecodeString(sig2)
	std := "3q2+7w" + strings.Repeat("A", 37) + "=" // 32 bytes in base64

	tests := []struct {
		name   string
		preset string
		value  string
		want   [][]byte
		ts     string
		reason reason
	}{
		{"github", "github", "sha256=" + sig, [][]byte{raw}, "", ""},
		{"github spaces", "github", "  sha256=" + sig + " ", [][]byte{raw}, "", ""},
		{"github no prefix", "github", sig, nil, "", reasonMalformedSignature},
		{"github sha1 prefix", "github", "sha1=" + sig[:40], nil, "", reasonMalformedSignature},
		{"github short", "github", "sha256=" + sig[:62], nil, "", reasonMalformedSignature},
		{"github bad hex", "github", "sha256=" + "zz" + sig[2:], nil, "", reasonMalformedSignature},
		{"stripe", "stripe", "t=123,v1=" + sig, [][]byte{raw}, "123", ""},
		{"stripe two and v0", "stripe", "t=123,v1=" + sig + ",v0=xyz,v1=" + sig2,
			[][]byte{raw, raw2}, "123", ""},
		{"stripe no t", "stripe", "v1=" + sig, nil, "", reasonMalformedSignature},
		{"stripe two t", "stripe", "t=1,t=2,v1=" + sig, nil, "", reasonMalformedSignature},
		{"stripe no v1", "stripe", "t=1,v0=" + sig, nil, "", reasonMissingSignature},
		{"stripe empty item", "stripe", "t=1,,v1=" + sig, nil, "", reasonMalformedSignature},
		{"stripe bad v1", "stripe", "t=1,v1=00", nil, "", reasonMalformedSignature},
		{"paddle", "paddle", "ts=99;h1=" + sig, [][]byte{raw}, "99", ""},
		{"paddle comma", "paddle", "ts=99,h1=" + sig, nil, "", reasonMalformedSignature},
		{"standard", "standard_webhooks", "v1," + std, [][]byte{mustB64(std)}, "", ""},
		{"standard with v1a", "standard_webhooks", "v1a,xyz v1," + std,
			[][]byte{mustB64(std)}, "", ""},
		{"standard only v1a", "standard_webhooks", "v1a," + std, nil, "",
			reasonMissingSignature},
		{"standard no comma", "standard_webhooks", "v1" + std, nil, "",
			reasonMalformedSignature},
		{"standard bad base64", "standard_webhooks", "v1,!!!", nil, "",
			reasonMalformedSignature},
		{"standard too many", "standard_webhooks", strings.Repeat("v1,"+std+" ", 9), nil, "",
			reasonMalformedSignature},
		{"shopify", "shopify", std, [][]byte{mustB64(std)}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := presets[tt.preset]
			m, rsn := s.parseSignature(tt.value, 32)
			if rsn != tt.reason {
				t.Fatalf("reason = %q, want %q", rsn, tt.reason)
			}
			if m.timestamp != tt.ts {
				t.Errorf("timestamp = %q, want %q", m.timestamp, tt.ts)
			}
			if len(m.sigs) != len(tt.want) {
				t.Fatalf("got %d signatures, want %d", len(m.sigs), len(tt.want))
			}
			for i := range tt.want {
				if !bytes.Equal(m.sigs[i], tt.want[i]) {
					t.Errorf("signature %d = %x, want %x", i, m.sigs[i], tt.want[i])
				}
			}
		})
	}
}

func mustB64(s string) []byte {
	b, err := signatureDecoders["base64"](s)
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzParseSignature feeds arbitrary header values to every header layout.
// A parse must never panic, and whatever it accepts must hold signatures of
// exactly the algorithm's size, no more of them than allowed.
func FuzzParseSignature(f *testing.F) {
	f.Add("sha256=" + strings.Repeat("ab", 32))
	f.Add("t=1,v1=" + strings.Repeat("ab", 32))
	f.Add("ts=1;h1=" + strings.Repeat("ab", 32))
	f.Add("v1,3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= v1a,xx")
	f.Add("t=,v1=")
	f.Fuzz(func(t *testing.T, value string) {
		for _, name := range []string{"github", "stripe", "paddle", "standard_webhooks", "shopify"} {
			s := presets[name]
			m, rsn := s.parseSignature(value, 32)
			if rsn != "" {
				if len(m.sigs) != 0 {
					t.Fatalf("%s: rejected %q but returned signatures", name, value)
				}
				continue
			}
			if len(m.sigs) == 0 || len(m.sigs) > maxSignatures {
				t.Fatalf("%s: accepted %q with %d signatures", name, value, len(m.sigs))
			}
			for _, sig := range m.sigs {
				if len(sig) != 32 {
					t.Fatalf("%s: accepted a %d-byte signature from %q", name, len(sig), value)
				}
			}
		}
	})
}
