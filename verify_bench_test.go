package webhookverify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

var benchSizes = []int{1 << 10, 1 << 20}

// benchBody is a JSON-ish body of n bytes.
func benchBody(n int) []byte {
	b := bytes.Repeat([]byte(`{"k":"v"},`), n/10+1)
	return b[:n]
}

// BenchmarkPrimitive is the bare MAC over a body, the floor that the
// handler's cost is compared against.
func BenchmarkPrimitive(b *testing.B) {
	for _, alg := range []struct {
		name string
		h    func() hash.Hash
	}{{"hmac-sha256", sha256.New}, {"hmac-sha512", sha512.New}} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%s", alg.name, sizeName(n)), func(b *testing.B) {
				body := benchBody(n)
				mac := hmac.New(alg.h, []byte("benchmark-secret"))
				sum := make([]byte, 0, 64)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					mac.Reset()
					mac.Write(body)
					sum = mac.Sum(sum[:0])
				}
			})
		}
	}
}

// benchSchemes are the presets measured, each with the secrets it needs.
var benchSchemes = []struct {
	preset string
	secret string
	alg    string
}{
	{"github", "benchmark-secret", ""},
	{"stripe", "whsec_benchmark", ""},
	{"standard_webhooks", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ""},
	{"slack", "benchmark-secret", ""},
	{"", "benchmark-secret", "hmac-sha512"},
}

// BenchmarkServeHTTP runs a signed delivery through the handler, replay
// store off, into a next handler that reads the body: the whole cost of the
// handler per delivery.
func BenchmarkServeHTTP(b *testing.B) {
	for _, sc := range benchSchemes {
		for _, n := range benchSizes {
			name := sc.preset
			if name == "" {
				name = "generic-" + sc.alg
			}
			b.Run(name+"/"+sizeName(n), func(b *testing.B) {
				benchmarkServe(b, sc.preset, sc.secret, sc.alg, n, 1)
			})
		}
	}
}

// BenchmarkSecrets shows how the cost grows with the number of configured
// secrets when the delivery is signed with the last one, the worst case.
func BenchmarkSecrets(b *testing.B) {
	for _, k := range []int{1, 2, 4, 8, 16} {
		b.Run(strconv.Itoa(k)+"-secrets/1KiB", func(b *testing.B) {
			benchmarkServe(b, "github", "benchmark-secret", "", 1<<10, k)
		})
	}
}

func benchmarkServe(b *testing.B, preset, secret, alg string, n, secrets int) {
	setClock(b, time.Unix(1_700_000_000, 0))
	cfg := &Handler{Preset: preset, Algorithm: alg, DisableReplay: true}
	if preset == "" {
		cfg.SignatureHeader = "X-Signature"
	}
	for i := 1; i < secrets; i++ {
		cfg.Secrets = append(cfg.Secrets, Secret{Value: "other-" + strconv.Itoa(i)})
	}
	cfg.Secrets = append(cfg.Secrets, Secret{Value: secret})
	h := provisioned(b, cfg)

	signCfg := &Handler{Preset: preset, Algorithm: alg, Secrets: []Secret{{Value: secret}}}
	if preset == "" {
		signCfg.SignatureHeader = "X-Signature"
	}
	s, err := newSigner(signCfg)
	if err != nil {
		b.Fatal(err)
	}
	body := benchBody(n)
	header := http.Header{}
	if err := s.sign(header, &delivery{body: body, id: "msg_1"}, now()); err != nil {
		b.Fatal(err)
	}

	serveLoop(b, h, header, body)
}

// serveLoop sends the signed delivery through h on every iteration, into a
// next handler that reads the body.
func serveLoop(b *testing.B, h *Handler, header http.Header, body []byte) {
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		_, err := io.Copy(io.Discard, r.Body)
		r.Body.Close()
		return err
	})
	ctx := context.WithValue(context.Background(), caddy.ReplacerCtxKey, caddy.NewReplacer())
	req := httptest.NewRequest(http.MethodPost, "http://example.com/hook", nil).WithContext(ctx)
	req.Header = header
	req.ContentLength = int64(len(body))
	reader := bytes.NewReader(body)
	w := httptest.NewRecorder()

	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		reader.Reset(body)
		req.Body = io.NopCloser(reader)
		if err := h.ServeHTTP(w, req, next); err != nil {
			b.Fatal(err)
		}
	}
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return strconv.Itoa(n>>20) + "MiB"
	}
	return strconv.Itoa(n>>10) + "KiB"
}

// BenchmarkPublicKey runs signed deliveries through the public-key presets,
// each against its bare primitive: the verification of one signature over
// the same signed content, with the key already parsed.
func BenchmarkPublicKey(b *testing.B) {
	for _, pk := range []struct{ preset, keyType string }{
		{"discord", "ed25519"}, {"sendgrid", "ecdsa-p256"},
	} {
		for _, n := range benchSizes {
			b.Run(pk.preset+"/"+sizeName(n), func(b *testing.B) {
				benchmarkPublic(b, pk.preset, pk.keyType, n)
			})
		}
	}
}

func benchmarkPublic(b *testing.B, preset, keyType string, n int) {
	setClock(b, time.Unix(1_700_000_000, 0))
	gen, err := generateKey(keyType, "bench")
	if err != nil {
		b.Fatal(err)
	}
	pubPEM, err := publicPEM(gen.priv.Public())
	if err != nil {
		b.Fatal(err)
	}
	h := provisioned(b, &Handler{Preset: preset, DisableReplay: true,
		PublicKeys: []PublicKey{{Value: pubPEM}}})
	s, err := newKeySigner(&Handler{Preset: preset}, &privateKey{key: gen.priv})
	if err != nil {
		b.Fatal(err)
	}
	body := benchBody(n)
	header := http.Header{}
	if err := s.sign(header, &delivery{body: body}, now()); err != nil {
		b.Fatal(err)
	}

	serveLoop(b, h, header, body)
}

// BenchmarkPrimitivePublic is the bare verification of one signature over
// a body of each size: Ed25519 over the message, ECDSA P-256 over its
// SHA-256 digest.
func BenchmarkPrimitivePublic(b *testing.B) {
	for _, n := range benchSizes {
		msg := benchBody(n)
		b.Run("ed25519/"+sizeName(n), func(b *testing.B) {
			pub, priv, _ := ed25519.GenerateKey(nil)
			sig := ed25519.Sign(priv, msg)
			b.SetBytes(int64(n))
			for b.Loop() {
				if !ed25519.Verify(pub, msg, sig) {
					b.Fatal("verify failed")
				}
			}
		})
		b.Run("ecdsa-p256/"+sizeName(n), func(b *testing.B) {
			priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			sum := sha256.Sum256(msg)
			sig, _ := ecdsa.SignASN1(rand.Reader, priv, sum[:])
			b.SetBytes(int64(n))
			for b.Loop() {
				sum := sha256.Sum256(msg)
				if !ecdsa.VerifyASN1(&priv.PublicKey, sum[:], sig) {
					b.Fatal("verify failed")
				}
			}
		})
	}
}
