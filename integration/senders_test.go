package integration

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// sender builds deliveries the way one provider signs them, computed here
// from the providers' documented formats, independently of the handler.
type sender struct {
	// name is the route path segment and the subtest name.
	name string
	// preset is the webhook_verify preset, or "" for the generic scheme.
	preset string
	// secret is the secret configured for the route.
	secret string
	// sigHeader names the header that carries the signature.
	sigHeader string
	// idHeader names the delivery ID header, "" when the scheme has none.
	idHeader string
	// token marks a shared token that covers no body (gitlab).
	token bool
	// sign sets the signature, timestamp and ID headers of d, signed with
	// secret at the given time for the site at base (http://host:port).
	sign func(d *delivery, secret string, at time.Time, base string)
	// body, when set, makes the body instead of plainBody (linear signs the
	// time inside the body).
	body func(at time.Time) []byte
}

// directive is the webhook_verify directive for the sender's route, with
// extra lines added to its block.
func (s sender) directive(extra ...string) string {
	out := "webhook_verify " + s.preset + " {\n\t\tsecret " + strconv.Quote(s.secret) + "\n"
	if s.preset == "" {
		out = "webhook_verify {\n\t\tsecret " + strconv.Quote(s.secret) + "\n" + genericLines
	}
	for _, l := range extra {
		out += "\t\t" + l + "\n"
	}
	return out + "\t}"
}

// newDelivery returns a fresh POST delivery to the sender's route, with a
// body never sent before, signed with the configured secret at the time at.
func (s sender) newDelivery(base string, at time.Time) *delivery {
	d := &delivery{
		method: http.MethodPost,
		path:   "/" + s.name + "?source=test",
		header: http.Header{"Content-Type": {"application/json"}},
		body:   plainBody(),
	}
	if s.body != nil {
		d.body = s.body(at)
	}
	s.sign(d, s.secret, at, base)
	return d
}

// seq makes bodies and IDs unique within the test binary.
var seq atomic.Int64

// plainBody returns a JSON body that no other delivery has.
func plainBody() []byte {
	return fmt.Appendf(nil, `{"event":"ping","seq":%d,"text":"caf\u00e9 \u2603"}`, seq.Add(1))
}

// nextID returns a delivery ID that no other delivery has.
func nextID(prefix string) string {
	return fmt.Sprintf("%s-%08d", prefix, seq.Add(1))
}

// mac is the HMAC of the concatenated parts under key.
func mac(newHash func() hash.Hash, key []byte, parts ...[]byte) []byte {
	m := hmac.New(newHash, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// hexMAC256 is the hex HMAC-SHA256 of the parts under a text key.
func hexMAC256(key string, parts ...[]byte) string {
	return hex.EncodeToString(mac(sha256.New, []byte(key), parts...))
}

// unix is the time as decimal Unix seconds.
func unix(at time.Time) string { return strconv.FormatInt(at.Unix(), 10) }

// standardKey is the key of a Standard Webhooks secret: the base64 bytes
// after "whsec_".
func standardKey(secret string) []byte {
	raw := secret[len("whsec_"):]
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		panic("test secret is not whsec_<base64>: " + err.Error())
	}
	return key
}

// genericSignedContent is the generic scheme's template as an operator
// writes it.
const genericSignedContent = "{method} {url}|{header.X-Req}|{timestamp}|{body}"

// genericLines configure the generic scheme, except signed_content, whose
// placeholders the Caddyfile adapter rewrites; see TestGenericScheme.
const genericLines = "\t\talgorithm hmac-sha512\n" +
	"\t\tsignature_header X-Sig\n" +
	"\t\tsignature_prefix \"sha512=\"\n" +
	"\t\tsignature_encoding base64url\n" +
	"\t\ttimestamp_header X-Time\n" +
	"\t\ttimestamp_format unix_ms\n"

// senders covers every preset, each signature header of gitea, and the
// generic scheme.
var senders = []sender{
	{
		name: "github", preset: "github", secret: "gh-secret-7Qe2vB",
		sigHeader: "X-Hub-Signature-256", idHeader: "X-GitHub-Delivery",
		sign: func(d *delivery, secret string, _ time.Time, _ string) {
			d.header.Set("X-Hub-Signature-256", "sha256="+hexMAC256(secret, d.body))
			d.header.Set("X-GitHub-Delivery", nextID("gh"))
			d.header.Set("X-GitHub-Event", "push")
		},
	},
	{
		name: "gitea", preset: "gitea", secret: "gitea-secret-91x",
		sigHeader: "X-Gitea-Signature", idHeader: "X-Gitea-Delivery",
		sign: func(d *delivery, secret string, _ time.Time, _ string) {
			d.header.Set("X-Gitea-Signature", hexMAC256(secret, d.body))
			d.header.Set("X-Gitea-Delivery", nextID("gitea"))
		},
	},
	{
		name: "forgejo", preset: "gitea", secret: "forgejo-secret-3kd",
		sigHeader: "X-Forgejo-Signature", idHeader: "X-Forgejo-Delivery",
		sign: func(d *delivery, secret string, _ time.Time, _ string) {
			d.header.Set("X-Forgejo-Signature", hexMAC256(secret, d.body))
			d.header.Set("X-Forgejo-Delivery", nextID("forgejo"))
		},
	},
	{
		name: "gogs", preset: "gitea", secret: "gogs-secret-p0q",
		sigHeader: "X-Gogs-Signature", idHeader: "X-Gogs-Delivery",
		sign: func(d *delivery, secret string, _ time.Time, _ string) {
			d.header.Set("X-Gogs-Signature", hexMAC256(secret, d.body))
			d.header.Set("X-Gogs-Delivery", nextID("gogs"))
		},
	},
	{
		name: "stripe", preset: "stripe", secret: "whsec_stripeTestSecret4f9a2",
		sigHeader: "Stripe-Signature",
		sign: func(d *delivery, secret string, at time.Time, _ string) {
			ts := unix(at)
			sig := hexMAC256(secret, []byte(ts+"."), d.body)
			d.header.Set("Stripe-Signature", "t="+ts+",v1="+sig+",v0=6ffbb59b2300aae63f2")
		},
	},
	{
		name: "slack", preset: "slack", secret: "slack-signing-8e2c",
		sigHeader: "X-Slack-Signature",
		sign: func(d *delivery, secret string, at time.Time, _ string) {
			ts := unix(at)
			d.header.Set("X-Slack-Request-Timestamp", ts)
			d.header.Set("X-Slack-Signature", "v0="+hexMAC256(secret, []byte("v0:"+ts+":"), d.body))
		},
	},
	{
		name: "shopify", preset: "shopify", secret: "shpss_shopifySecret77",
		sigHeader: "X-Shopify-Hmac-Sha256", idHeader: "X-Shopify-Webhook-Id",
		sign: func(d *delivery, secret string, _ time.Time, _ string) {
			sig := base64.StdEncoding.EncodeToString(mac(sha256.New, []byte(secret), d.body))
			d.header.Set("X-Shopify-Hmac-Sha256", sig)
			d.header.Set("X-Shopify-Webhook-Id", nextID("shop"))
		},
	},
	{
		name: "standard_webhooks", preset: "standard_webhooks",
		secret:    "whsec_c3RhbmRhcmQtd2ViaG9va3MtdGVzdC1rZXktMzJiISE=",
		sigHeader: "Webhook-Signature", idHeader: "Webhook-Id",
		sign: signStandard,
	},
	{
		name: "twitch", preset: "twitch", secret: "twitch-secret-0123456789",
		sigHeader: "Twitch-Eventsub-Message-Signature", idHeader: "Twitch-Eventsub-Message-Id",
		sign: func(d *delivery, secret string, at time.Time, _ string) {
			id := nextID("twitch")
			ts := at.UTC().Format("2006-01-02T15:04:05.000000000Z07:00")
			d.header.Set("Twitch-Eventsub-Message-Id", id)
			d.header.Set("Twitch-Eventsub-Message-Timestamp", ts)
			d.header.Set("Twitch-Eventsub-Message-Signature",
				"sha256="+hexMAC256(secret, []byte(id+ts), d.body))
		},
	},
	{
		name: "zoom", preset: "zoom", secret: "zoom-secret-token-x1",
		sigHeader: "X-Zm-Signature",
		sign: func(d *delivery, secret string, at time.Time, _ string) {
			ts := unix(at)
			d.header.Set("X-Zm-Request-Timestamp", ts)
			d.header.Set("X-Zm-Signature", "v0="+hexMAC256(secret, []byte("v0:"+ts+":"), d.body))
		},
	},
	{
		name: "paddle", preset: "paddle", secret: "pdl_ntfset_paddleSecret",
		sigHeader: "Paddle-Signature",
		sign: func(d *delivery, secret string, at time.Time, _ string) {
			ts := unix(at)
			d.header.Set("Paddle-Signature", "ts="+ts+";h1="+hexMAC256(secret, []byte(ts+":"), d.body))
		},
	},
	{
		name: "linear", preset: "linear", secret: "lin_wh_linearSecret55",
		sigHeader: "Linear-Signature", idHeader: "Linear-Delivery",
		body: func(at time.Time) []byte {
			return fmt.Appendf(nil, `{"action":"create","seq":%d,"webhookTimestamp":%d}`,
				seq.Add(1), at.UnixMilli())
		},
		sign: func(d *delivery, secret string, _ time.Time, _ string) {
			d.header.Set("Linear-Signature", hexMAC256(secret, d.body))
			d.header.Set("Linear-Delivery", nextID("linear"))
		},
	},
	{
		name: "gitlab", preset: "gitlab", secret: "glpat-style-token-42",
		sigHeader: "X-Gitlab-Token", idHeader: "X-Gitlab-Event-Uuid", token: true,
		sign: func(d *delivery, secret string, _ time.Time, _ string) {
			d.header.Set("X-Gitlab-Token", secret)
			d.header.Set("X-Gitlab-Event-Uuid", nextID("gitlab"))
		},
	},
	{
		name: "generic", secret: "generic-secret-Zz9",
		sigHeader: "X-Sig",
		sign: func(d *delivery, secret string, at time.Time, base string) {
			ts := strconv.FormatInt(at.UnixMilli(), 10)
			d.header.Set("X-Req", nextID("req"))
			d.header.Set("X-Time", ts)
			content := d.method + " " + base + d.path + "|" + d.header.Get("X-Req") + "|" +
				ts + "|"
			sig := mac(sha512.New, []byte(secret), []byte(content), d.body)
			d.header.Set("X-Sig", "sha512="+base64.RawURLEncoding.EncodeToString(sig))
		},
	},
}

// signStandard signs d as a Standard Webhooks sender does, with a fresh ID.
func signStandard(d *delivery, secret string, at time.Time, _ string) {
	signStandardID(d, secret, at, nextID("msg"))
}

// signStandardID signs d as a Standard Webhooks sender with the given ID.
func signStandardID(d *delivery, secret string, at time.Time, id string) {
	ts := unix(at)
	sig := mac(sha256.New, standardKey(secret), []byte(id+"."+ts+"."), d.body)
	d.header.Set("Webhook-Id", id)
	d.header.Set("Webhook-Timestamp", ts)
	d.header.Set("Webhook-Signature", "v1,"+base64.StdEncoding.EncodeToString(sig))
}

// senderNamed returns the sender with the given name.
func senderNamed(name string) sender {
	for _, s := range senders {
		if s.name == name {
			return s
		}
	}
	panic("no sender named " + name)
}

// useGenericContent sets the generic scheme's signed_content in the JSON of
// every webhook_verify handler without a preset, bypassing the Caddyfile
// adapter's placeholder rewriting.
func useGenericContent(cfg map[string]any) {
	for _, h := range handlers(cfg) {
		if _, ok := h["preset"]; !ok {
			h["signed_content"] = genericSignedContent
		}
	}
}

// routes is a site block with one route per sender, /<name>, each verified
// with the sender's scheme and proxied to up; extra lines go into every
// webhook_verify block.
func routes(up *upstream, ss []sender, extra ...string) string {
	out := ""
	for _, s := range ss {
		out += fmt.Sprintf("\thandle /%s {\n\t%s\n\t\treverse_proxy %s\n\t}\n",
			s.name, s.directive(extra...), up.addr())
	}
	return out
}
