package integration

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/webhookverify/caddy-webhook-verify/internal/testkeys"
)

// rfcDir holds the RFC 9421 Appendix B.1 keys.
var rfcDir = filepath.Join("..", "testdata", "rfc9421")

// rfcKey reads a private key of RFC 9421 Appendix B.1. The RSA-PSS key is
// PKCS#8 with the RSASSA-PSS algorithm identifier, which x509 does not
// read, so its inner PKCS#1 key is taken out by hand.
func rfcKey(t *testing.T, name string) any {
	t.Helper()
	if name == "test-shared-secret" {
		raw, err := os.ReadFile(filepath.Join(rfcDir, "test-shared-secret.b64"))
		if err != nil {
			t.Fatal(err)
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	raw, err := os.ReadFile(filepath.Join(rfcDir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := testkeys.ParsePrivatePEM(raw)
	if err != nil {
		t.Fatalf("parsing %s: %v", name, err)
	}
	return key
}

// httpSig describes how the test signs one request, written here from
// RFC 9421 independently of the handler.
type httpSig struct {
	label string
	// covered are component identifiers as they appear in the inner list.
	covered []string
	// params follow the inner list, such as `;created=1;keyid="k"`; %d
	// in it is replaced by the current Unix time.
	params string
	alg    string
	key    any
}

// sign sets Content-Digest, Signature-Input and Signature on d for a
// request to origin (scheme://host[:port]).
func (s httpSig) sign(t *testing.T, d *delivery, origin string) {
	t.Helper()
	sum := sha256.Sum256(d.body)
	if d.header.Get("Content-Digest") == "" {
		d.header.Set("Content-Digest",
			"sha-256=:"+base64.StdEncoding.EncodeToString(sum[:])+":")
	}
	params := s.params
	if strings.Contains(params, "%d") {
		params = fmt.Sprintf(params, time.Now().Unix())
	}
	label := s.label
	if label == "" {
		label = "sig1"
	}

	u, err := url.Parse(origin + d.path)
	if err != nil {
		t.Fatal(err)
	}
	var base strings.Builder
	for _, c := range s.covered {
		base.WriteString(c + ": " + componentValue(t, c, d, u) + "\n")
	}
	inner := "(" + strings.Join(s.covered, " ") + ")" + params
	base.WriteString(`"@signature-params": ` + inner)

	sig := signBase(t, s.alg, s.key, []byte(base.String()))
	d.header.Set("Signature-Input", label+"="+inner)
	d.header.Set("Signature", label+"=:"+base64.StdEncoding.EncodeToString(sig)+":")
}

// componentValue computes the few components these tests cover.
func componentValue(t *testing.T, id string, d *delivery, u *url.URL) string {
	t.Helper()
	switch id {
	case `"@method"`:
		return d.method
	case `"@target-uri"`:
		return u.String()
	case `"@authority"`:
		return u.Host
	case `"@scheme"`:
		return u.Scheme
	case `"@path"`:
		return u.EscapedPath()
	case `"@query"`:
		return "?" + u.RawQuery
	case `"@request-target"`:
		return d.path
	case `"@query-param";name="id"`:
		return u.Query().Get("id")
	}
	name, _ := strconv.Unquote(strings.SplitN(id, ";", 2)[0])
	return d.header.Get(name)
}

// signBase signs a signature base with one of the RFC 9421 algorithms.
func signBase(t *testing.T, alg string, key any, base []byte) []byte {
	t.Helper()
	var (
		sig []byte
		err error
	)
	switch alg {
	case "hmac-sha256":
		m := hmac.New(sha256.New, key.([]byte))
		m.Write(base)
		sig = m.Sum(nil)
	case "ed25519":
		sig = ed25519.Sign(key.(ed25519.PrivateKey), base)
	case "ecdsa-p256-sha256", "ecdsa-p384-sha384":
		k := key.(*ecdsa.PrivateKey)
		size := (k.Curve.Params().BitSize + 7) / 8
		var digest []byte
		if size == 32 {
			s := sha256.Sum256(base)
			digest = s[:]
		} else {
			s := sha512.Sum384(base)
			digest = s[:]
		}
		r, s, e := ecdsa.Sign(rand.Reader, k, digest)
		sig, err = make([]byte, 2*size), e
		if e == nil {
			r.FillBytes(sig[:size])
			s.FillBytes(sig[size:])
		}
	case "rsa-pss-sha512":
		s := sha512.Sum512(base)
		sig, err = rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA512, s[:],
			&rsa.PSSOptions{SaltLength: 64})
	case "rsa-v1_5-sha256":
		s := sha256.Sum256(base)
		sig, err = rsa.SignPKCS1v15(nil, key.(*rsa.PrivateKey), crypto.SHA256, s[:])
	default:
		t.Fatalf("no signer for %s", alg)
	}
	if err != nil {
		t.Fatalf("signing with %s: %v", alg, err)
	}
	return sig
}

// jwksServer publishes the public halves of keys on a loopback JWKS
// endpoint.
func jwksServer(t *testing.T, keys map[string]crypto.Signer) string {
	t.Helper()
	var set jose.JSONWebKeySet
	for kid, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: kid, Use: "sig"})
	}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/jwks.json"
}

// reasonErrors answers every refusal with its reason as the body.
const reasonErrors = `	handle_errors {
		respond "{http.webhook_verify.reason}" {http.error.status_code}
	}
`

// expectSigReason sends d and checks the exact status and refusal reason, and
// that nothing reached the upstream.
func expectSigReason(t *testing.T, inst *instance, up *upstream, d *delivery, status int,
	rsn string) {
	t.Helper()
	before := up.count()
	got, body := inst.send(t, d)
	if got != status || body != rsn {
		t.Errorf("got %d %q, want %d %q", got, body, status, rsn)
	}
	if n := up.count() - before; n != 0 {
		t.Errorf("upstream received %d requests, want none", n)
	}
}

// postTo is a fresh JSON POST to path, with a body no other has.
func postTo(path string) *delivery {
	return &delivery{
		method: http.MethodPost,
		path:   path,
		header: http.Header{"Content-Type": {"application/json"}},
		body:   plainBody(),
	}
}

// httpSigSite is the site of TestHTTPSignature: one route per key set and
// policy.
func httpSigSite(up *upstream, jwksURL string) string {
	key := func(name string) string { return filepath.Join(rfcDir, name+".pem") }
	return fmt.Sprintf(`	handle /rfc* {
		webhook_verify http_signature {
			secret %s test-shared-secret
			secret_encoding base64
			public_key %s test-key-ed25519
			public_key %s test-key-ecc-p256
			covered @method @target-uri content-digest
		}
		reverse_proxy %[7]s
	}
	handle /pss {
		webhook_verify http_signature {
			public_key %[4]s test-key-rsa-pss
			algorithm rsa-pss-sha512
		}
		reverse_proxy %[7]s
	}
	handle /rsa {
		webhook_verify http_signature {
			public_key %[5]s test-key-rsa
			algorithm rsa-v1_5-sha256
		}
		reverse_proxy %[7]s
	}
	handle /policy {
		webhook_verify http_signature {
			public_key %[2]s test-key-ed25519
			label app
			covered @method @authority @path content-digest @query-param;name="id"
			require_tag orders
			tolerance 1m
		}
		reverse_proxy %[7]s
	}
	handle /jwks {
		webhook_verify http_signature {
			jwks %[6]s
		}
		reverse_proxy %[7]s
	}
	handle /origin {
		webhook_verify http_signature {
			public_key %[2]s test-key-ed25519
			covered @target-uri content-digest
			external_origin https://hooks.example.com
		}
		reverse_proxy %[7]s
	}
	handle /rw {
		rewrite * /rewritten?from=rw
		webhook_verify http_signature {
			public_key %[2]s test-key-ed25519
			covered @request-target content-digest
		}
		reverse_proxy %[7]s
	}
`+reasonErrors, rfcB64(), key("test-key-ed25519"), key("test-key-ecc-p256"),
		key("test-key-rsa-pss"), key("test-key-rsa"), jwksURL, up.addr())
}

// rfcB64 is test-shared-secret as the RFC writes it, base64.
func rfcB64() string {
	raw, _ := os.ReadFile(filepath.Join(rfcDir, "test-shared-secret.b64"))
	return strings.TrimSpace(string(raw))
}

// TestHTTPSignature sends RFC 9421-signed requests through Caddy, signed
// with the RFC 9421 Appendix B keys and with keys published on a loopback
// JWKS endpoint, and checks the exact status and reason of every policy
// case.
func TestHTTPSignature(t *testing.T) {
	jwksEd := ed25519.NewKeyFromSeed(make([]byte, 32))
	jwksP384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwksURL := jwksServer(t, map[string]crypto.Signer{"jwks-ed": jwksEd, "jwks-p384": jwksP384})
	up := newUpstream(t)
	inst := startCaddy(t, httpSigSite(up, jwksURL))

	const base = `"@method" "@target-uri" "content-digest"`
	cov := strings.Fields(base)
	created := `;created=%d;keyid=`
	hmacSig := httpSig{covered: cov, params: created + `"test-shared-secret"`,
		alg: "hmac-sha256", key: rfcKey(t, "test-shared-secret")}
	edSig := httpSig{covered: cov, params: created + `"test-key-ed25519"`,
		alg: "ed25519", key: rfcKey(t, "test-key-ed25519")}
	ecSig := httpSig{covered: cov, params: created + `"test-key-ecc-p256"`,
		alg: "ecdsa-p256-sha256", key: rfcKey(t, "test-key-ecc-p256")}

	signed := func(path string, s httpSig) *delivery {
		d := postTo(path)
		s.sign(t, d, inst.base)
		return d
	}

	// A request signed for two configured keys is remembered under both:
	// dropping either signature from a copy does not make it new.
	t.Run("replay with one of two signatures dropped", func(t *testing.T) {
		nonce := fmt.Sprintf(`;nonce="n-%d"`, time.Now().UnixNano())
		ed, ec := edSig, ecSig
		ed.params, ec.params = ed.params+nonce, ec.params+nonce
		ed.label, ec.label = "sig1", "sig2"
		d := postTo("/rfc")
		ed.sign(t, d, inst.base)
		in1, sig1 := d.header.Get("Signature-Input"), d.header.Get("Signature")
		ec.sign(t, d, inst.base)
		in2, sig2 := d.header.Get("Signature-Input"), d.header.Get("Signature")

		d.header.Set("Signature-Input", in1+", "+in2)
		d.header.Set("Signature", sig1+", "+sig2)
		expectForwarded(t, inst, up, d, http.StatusOK)
		for name, pair := range map[string][2]string{"only sig2": {in2, sig2},
			"only sig1": {in1, sig1}} {
			d.header.Set("Signature-Input", pair[0])
			d.header.Set("Signature", pair[1])
			t.Run(name, func(t *testing.T) {
				expectSigReason(t, inst, up, d, http.StatusConflict, "duplicate_delivery")
			})
		}
	})

	t.Run("accepted", func(t *testing.T) {
		for name, d := range map[string]*delivery{
			"hmac-sha256":       signed("/rfc", hmacSig),
			"ed25519":           signed("/rfc?id=1", edSig),
			"ecdsa-p256-sha256": signed("/rfc", ecSig),
			"rsa-pss-sha512": signed("/pss", httpSig{covered: cov,
				params: created + `"test-key-rsa-pss"`, alg: "rsa-pss-sha512",
				key: rfcKey(t, "test-key-rsa-pss")}),
			"rsa-v1_5-sha256 with alg": signed("/rsa", httpSig{covered: cov,
				params: created + `"test-key-rsa";alg="rsa-v1_5-sha256"`,
				alg:    "rsa-v1_5-sha256", key: rfcKey(t, "test-key-rsa")}),
			"jwks ed25519": signed("/jwks", httpSig{covered: cov,
				params: created + `"jwks-ed"`, alg: "ed25519", key: jwksEd}),
			"jwks ecdsa-p384-sha384": signed("/jwks", httpSig{covered: cov,
				params: created + `"jwks-p384";alg="ecdsa-p384-sha384"`,
				alg:    "ecdsa-p384-sha384", key: jwksP384}),
			"no keyid, every key tried": signed("/rfc", httpSig{covered: cov,
				params: `;created=%d`, alg: "ed25519", key: rfcKey(t, "test-key-ed25519")}),
		} {
			t.Run(name, func(t *testing.T) { expectForwarded(t, inst, up, d, http.StatusOK) })
		}
	})

	t.Run("replay of the same request", func(t *testing.T) {
		d := signed("/rfc", edSig)
		expectForwarded(t, inst, up, d, http.StatusOK)
		expectSigReason(t, inst, up, d, http.StatusConflict, "duplicate_delivery")
	})

	t.Run("nonce identifies the delivery", func(t *testing.T) {
		s := edSig
		s.params = created + `"test-key-ed25519";nonce="n-` + nextID("nonce") + `"`
		expectForwarded(t, inst, up, signed("/rfc", s), http.StatusOK)
		// another body, so another signature base, under the same nonce
		expectSigReason(t, inst, up, signed("/rfc", s), http.StatusConflict,
			"duplicate_delivery")
	})

	refusals := []struct {
		name   string
		d      func() *delivery
		status int
		reason string
	}{
		{"body changed after signing", func() *delivery {
			d := signed("/rfc", edSig)
			d.body = append(d.body, ' ')
			return d
		}, 401, "content_digest_mismatch"},
		{"signature changed", func() *delivery {
			d := signed("/rfc", edSig)
			v := d.header.Get("Signature")
			d.header.Set("Signature", v[:10]+flip(v[10])+v[11:])
			return d
		}, 401, "invalid_signature"},
		{"method changed", func() *delivery {
			d := signed("/rfc", edSig)
			d.method = http.MethodPut
			return d
		}, 401, "invalid_signature"},
		{"digest not covered", func() *delivery {
			s := edSig
			s.covered = cov[:2]
			return signed("/rfc", s)
		}, 401, "uncovered_component"},
		{"no created", func() *delivery {
			s := edSig
			s.params = `;keyid="test-key-ed25519"`
			return signed("/rfc", s)
		}, 401, "missing_timestamp"},
		{"created too old", func() *delivery {
			s := edSig
			s.params = fmt.Sprintf(`;created=%d;keyid="test-key-ed25519"`,
				time.Now().Add(-time.Hour).Unix())
			return signed("/rfc", s)
		}, 401, "stale_timestamp"},
		{"created in the future", func() *delivery {
			s := edSig
			s.params = fmt.Sprintf(`;created=%d;keyid="test-key-ed25519"`,
				time.Now().Add(time.Hour).Unix())
			return signed("/rfc", s)
		}, 401, "future_timestamp"},
		{"expired", func() *delivery {
			s := edSig
			s.params = fmt.Sprintf(`;created=%d;expires=%d;keyid="test-key-ed25519"`,
				time.Now().Add(-time.Minute).Unix(), time.Now().Add(-time.Second).Unix())
			return signed("/rfc", s)
		}, 401, "expired_signature"},
		{"alg contradicts the key", func() *delivery {
			s := edSig
			s.params += `;alg="rsa-pss-sha512"`
			return signed("/rfc", s)
		}, 401, "disallowed_algorithm"},
		{"alg not in RFC 9421", func() *delivery {
			s := edSig
			s.params += `;alg="none"`
			return signed("/rfc", s)
		}, 401, "disallowed_algorithm"},
		{"unknown keyid", func() *delivery {
			s := edSig
			s.params = created + `"someone-else"`
			return signed("/pss", s)
		}, 401, "unknown_key"},
		{"unknown kid at the JWKS", func() *delivery {
			s := edSig
			s.params = created + `"not-published"`
			return signed("/jwks", s)
		}, 401, "unknown_key"},
		{"req on a request", func() *delivery {
			s := edSig
			s.covered = append([]string{`"@method";req`}, cov...)
			return signed("/rfc", s)
		}, 400, "unsupported_component"},
		{"covered header absent", func() *delivery {
			s := edSig
			s.covered = append([]string{`"x-partner"`}, cov...)
			d := postTo("/rfc")
			d.header.Set("X-Partner", "p1")
			s.sign(t, d, inst.base)
			d.header.Del("X-Partner")
			return d
		}, 401, "missing_component"},
		{"no signature", func() *delivery { return postTo("/rfc") }, 401,
			"missing_signature"},
		{"malformed Signature-Input", func() *delivery {
			d := signed("/rfc", edSig)
			d.header.Set("Signature-Input", "sig1=(unterminated")
			return d
		}, 400, "malformed_signature"},
		{"signature not a byte sequence", func() *delivery {
			d := signed("/rfc", edSig)
			d.header.Set("Signature", "sig1=abc")
			return d
		}, 400, "malformed_signature"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			expectSigReason(t, inst, up, tt.d(), tt.status, tt.reason)
		})
	}

	testPolicyRoute(t, inst, up)
	testOrigins(t, inst, up)
}

// flip changes one base64 character into another.
func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// testPolicyRoute checks label, covered with parameters, and require_tag.
func testPolicyRoute(t *testing.T, inst *instance, up *upstream) {
	good := httpSig{label: "app",
		covered: []string{`"@method"`, `"@authority"`, `"@path"`, `"content-digest"`,
			`"@query-param";name="id"`},
		params: `;created=%d;keyid="test-key-ed25519";tag="orders"`,
		alg:    "ed25519", key: rfcKey(t, "test-key-ed25519")}
	signed := func(s httpSig) *delivery {
		d := postTo("/policy?id=42")
		s.sign(t, d, inst.base)
		return d
	}

	t.Run("policy: all met", func(t *testing.T) {
		expectForwarded(t, inst, up, signed(good), http.StatusOK)
	})
	t.Run("policy: other label", func(t *testing.T) {
		s := good
		s.label = "other"
		expectSigReason(t, inst, up, signed(s), 401, "missing_signature")
	})
	t.Run("policy: wrong tag", func(t *testing.T) {
		s := good
		s.params = `;created=%d;keyid="test-key-ed25519";tag="billing"`
		expectSigReason(t, inst, up, signed(s), 401, "tag_mismatch")
	})
	t.Run("policy: query parameter not covered", func(t *testing.T) {
		s := good
		s.covered = s.covered[:4]
		expectSigReason(t, inst, up, signed(s), 401, "uncovered_component")
	})
	t.Run("policy: query parameter changed", func(t *testing.T) {
		d := signed(good)
		d.path = "/policy?id=43"
		expectSigReason(t, inst, up, d, 401, "invalid_signature")
	})
}

// testOrigins checks external_origin and a rewrite by an earlier handler.
func testOrigins(t *testing.T, inst *instance, up *upstream) {
	s := httpSig{covered: []string{`"@target-uri"`, `"content-digest"`},
		params: `;created=%d;keyid="test-key-ed25519"`, alg: "ed25519",
		key: rfcKey(t, "test-key-ed25519")}

	t.Run("external_origin signed", func(t *testing.T) {
		d := postTo("/origin")
		s.sign(t, d, "https://hooks.example.com")
		expectForwarded(t, inst, up, d, http.StatusOK)
	})
	t.Run("external_origin: the internal URL is not what was signed", func(t *testing.T) {
		d := postTo("/origin")
		s.sign(t, d, inst.base)
		expectSigReason(t, inst, up, d, 401, "invalid_signature")
	})
	t.Run("original target after a rewrite", func(t *testing.T) {
		rs := s
		rs.covered = []string{`"@request-target"`, `"content-digest"`}
		d := postTo("/rw")
		rs.sign(t, d, inst.base)
		before := up.count()
		if status, _ := inst.send(t, d); status != http.StatusOK {
			t.Fatalf("status = %d, want 200", status)
		}
		if got := up.since(before); len(got) != 1 || got[0].uri != "/rewritten?from=rw" {
			t.Fatalf("upstream got %+v, want one request to /rewritten?from=rw", got)
		}
	})
}

// TestHTTPSignatureTrustedProxy checks that X-Forwarded-Proto and
// X-Forwarded-Host define the signed URL only for requests from one of the
// server's trusted_proxies.
func TestHTTPSignatureTrustedProxy(t *testing.T) {
	site := fmt.Sprintf(`	handle /tp {
		webhook_verify http_signature {
			public_key %s test-key-ed25519
			covered @target-uri content-digest
		}
		reverse_proxy %%s
	}
`+reasonErrors, filepath.Join(rfcDir, "test-key-ed25519.pem"))
	s := httpSig{covered: []string{`"@target-uri"`, `"content-digest"`},
		params: `;created=%d;keyid="test-key-ed25519"`, alg: "ed25519",
		key: rfcKey(t, "test-key-ed25519")}
	forwarded := func() *delivery {
		d := postTo("/tp")
		d.header.Set("X-Forwarded-Proto", "https")
		d.header.Set("X-Forwarded-Host", "public.example")
		s.sign(t, d, "https://public.example")
		return d
	}

	t.Run("trusted", func(t *testing.T) {
		up := newUpstream(t)
		inst := startPatched(t, fmt.Sprintf(site, up.addr()), func(cfg map[string]any) {
			servers := cfg["apps"].(map[string]any)["http"].(map[string]any)["servers"]
			for _, srv := range servers.(map[string]any) {
				srv.(map[string]any)["trusted_proxies"] = map[string]any{
					"source": "static", "ranges": []string{"127.0.0.1/32"}}
			}
		})
		expectForwarded(t, inst, up, forwarded(), http.StatusOK)
	})
	t.Run("not trusted", func(t *testing.T) {
		up := newUpstream(t)
		inst := startCaddy(t, fmt.Sprintf(site, up.addr()))
		expectSigReason(t, inst, up, forwarded(), 401, "invalid_signature")
	})
}
