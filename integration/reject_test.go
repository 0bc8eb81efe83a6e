package integration

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// timed are the senders whose deliveries carry a signed timestamp.
var timed = []string{
	"stripe", "slack", "standard_webhooks", "twitch", "zoom", "paddle", "linear", "generic",
}

// sigStart is where the signature begins in a signature header value: after
// the first known marker that opens the value or follows a list separator.
func sigStart(value string) int {
	for _, marker := range []string{"v1=", "h1=", "v1,", "sha256=", "sha512=", "v0="} {
		if strings.HasPrefix(value, marker) {
			return len(marker)
		}
		if i := strings.IndexAny(value, ",;"); i >= 0 &&
			strings.HasPrefix(value[i+1:], marker) {
			return i + 1 + len(marker)
		}
	}
	return 0
}

// sigCore is the first signature in a signature header value, without its
// marker and without what follows it in a list.
func sigCore(value string) string {
	core := value[sigStart(value):]
	if i := strings.IndexAny(core, ",; "); i >= 0 {
		core = core[:i]
	}
	return core
}

// tamper changes the first character of the signature in a signature
// header value to another character valid in hex, base64 and base64url
// alike, so that the value still parses but no longer verifies.
func tamper(value string) string {
	pos := sigStart(value)
	repl := byte('0')
	if value[pos] == '0' {
		repl = '1'
	}
	return value[:pos] + string(repl) + value[pos+1:]
}

// otherSecret is a secret of the same form as the sender's that the route
// is not configured with.
func otherSecret(s sender) string {
	if s.preset == "standard_webhooks" {
		return "whsec_" + "b3RoZXItc3RhbmRhcmQta2V5LW5vdC1jb25maWd1cmVk"
	}
	return s.secret + "-other"
}

// TestRejectsForgeries checks, for every scheme, that deliveries that do not
// authenticate get 401 and never reach the upstream.
func TestRejectsForgeries(t *testing.T) {
	up := newUpstream(t)
	inst := startPatched(t, routes(up, senders), useGenericContent)

	for _, s := range senders {
		t.Run(s.name+"/wrong signature", func(t *testing.T) {
			d := s.newDelivery(inst.base, time.Now())
			d.header.Set(s.sigHeader, tamper(d.header.Get(s.sigHeader)))
			expectRefused(t, inst, up, d, http.StatusUnauthorized)
		})

		t.Run(s.name+"/missing signature header", func(t *testing.T) {
			d := s.newDelivery(inst.base, time.Now())
			d.header.Del(s.sigHeader)
			expectRefused(t, inst, up, d, http.StatusUnauthorized)
		})

		t.Run(s.name+"/empty signature header", func(t *testing.T) {
			d := s.newDelivery(inst.base, time.Now())
			d.header.Set(s.sigHeader, "")
			expectRefused(t, inst, up, d, http.StatusUnauthorized)
		})

		t.Run(s.name+"/secret not configured", func(t *testing.T) {
			d := s.newDelivery(inst.base, time.Now())
			s.sign(d, otherSecret(s), time.Now(), inst.base)
			expectRefused(t, inst, up, d, http.StatusUnauthorized)
		})

		if s.token {
			// a shared token covers no body: nothing to forge there
			continue
		}
		t.Run(s.name+"/signature for another body", func(t *testing.T) {
			at := time.Now()
			d := s.newDelivery(inst.base, at)
			other := s.newDelivery(inst.base, at)
			d.body = other.body
			expectRefused(t, inst, up, d, http.StatusUnauthorized)
		})
	}

	t.Run("github/signature of the body with one byte appended", func(t *testing.T) {
		d := senderNamed("github").newDelivery(inst.base, time.Now())
		d.body = append(bytes.Clone(d.body), ' ')
		expectRefused(t, inst, up, d, http.StatusUnauthorized)
	})

	t.Run("standard_webhooks/signature of another id", func(t *testing.T) {
		d := senderNamed("standard_webhooks").newDelivery(inst.base, time.Now())
		d.header.Set("Webhook-Id", nextID("msg"))
		expectRefused(t, inst, up, d, http.StatusUnauthorized)
	})

	t.Run("standard_webhooks/without webhook-id", func(t *testing.T) {
		d := senderNamed("standard_webhooks").newDelivery(inst.base, time.Now())
		d.header.Del("Webhook-Id")
		expectRefused(t, inst, up, d, http.StatusUnauthorized)
	})

	t.Run("linear/signed body without webhookTimestamp", func(t *testing.T) {
		s := senderNamed("linear")
		d := s.newDelivery(inst.base, time.Now())
		d.body = plainBody()
		s.sign(d, s.secret, time.Now(), inst.base)
		expectRefused(t, inst, up, d, http.StatusUnauthorized)
	})

	t.Run("stripe/signature of another timestamp", func(t *testing.T) {
		s := senderNamed("stripe")
		d := s.newDelivery(inst.base, time.Now())
		sig := strings.SplitN(d.header.Get("Stripe-Signature"), ",", 3)[1]
		d.header.Set("Stripe-Signature", "t="+unix(time.Now().Add(-time.Second))+","+sig)
		expectRefused(t, inst, up, d, http.StatusUnauthorized)
	})
}

// TestRejectsMalformed checks that signature and timestamp headers that
// cannot be read exactly get 400 and never reach the upstream.
func TestRejectsMalformed(t *testing.T) {
	up := newUpstream(t)
	inst := startPatched(t, routes(up, senders), useGenericContent)
	zeros := strings.Repeat("0", 64)

	cases := []struct {
		name   string
		sender string
		header string
		// value makes the header value from the correctly signed one.
		value func(signed string) string
	}{
		{"github bad hex", "github", "X-Hub-Signature-256",
			func(string) string { return "sha256=zz" + zeros[2:] }},
		{"github wrong length", "github", "X-Hub-Signature-256",
			func(v string) string { return v[:len(v)-2] }},
		{"github too long", "github", "X-Hub-Signature-256",
			func(v string) string { return v + "00" }},
		{"github missing prefix", "github", "X-Hub-Signature-256",
			func(v string) string { return strings.TrimPrefix(v, "sha256=") }},
		{"github sha1 prefix", "github", "X-Hub-Signature-256",
			func(v string) string { return "sha1=" + strings.TrimPrefix(v, "sha256=") }},
		{"gitea wrong length", "gitea", "X-Gitea-Signature",
			func(v string) string { return v[:40] }},
		{"stripe without t", "stripe", "Stripe-Signature",
			func(v string) string { return v[strings.Index(v, "v1="):] }},
		{"stripe two timestamps", "stripe", "Stripe-Signature",
			func(v string) string { return "t=1," + v }},
		{"stripe bad hex", "stripe", "Stripe-Signature",
			func(v string) string { return v[:strings.Index(v, "v1=")] + "v1=xyz" }},
		{"slack missing prefix", "slack", "X-Slack-Signature",
			func(v string) string { return strings.TrimPrefix(v, "v0=") }},
		{"shopify bad base64", "shopify", "X-Shopify-Hmac-Sha256",
			func(string) string { return "not*base64*at*all" }},
		{"shopify hex instead of base64", "shopify", "X-Shopify-Hmac-Sha256",
			func(string) string { return zeros }},
		{"standard_webhooks bad base64", "standard_webhooks", "Webhook-Signature",
			func(string) string { return "v1,%%%%" }},
		{"standard_webhooks no comma", "standard_webhooks", "Webhook-Signature",
			func(v string) string { return strings.Replace(v, ",", "", 1) }},
		{"paddle without ts", "paddle", "Paddle-Signature",
			func(v string) string { return v[strings.Index(v, "h1="):] }},
		{"twitch bad hex", "twitch", "Twitch-Eventsub-Message-Signature",
			func(string) string { return "sha256=" + strings.Repeat("g", 64) }},
		{"generic padding in the middle", "generic", "X-Sig",
			func(v string) string { return v[:12] + "=" + v[13:] }},
		{"slack timestamp not a number", "slack", "X-Slack-Request-Timestamp",
			func(string) string { return "17e8" }},
		{"slack negative timestamp", "slack", "X-Slack-Request-Timestamp",
			func(v string) string { return "-" + v }},
		{"stripe timestamp not a number", "stripe", "Stripe-Signature",
			func(v string) string { return "t=now" + v[strings.Index(v, ","):] }},
		{"standard_webhooks timestamp with a plus sign", "standard_webhooks",
			"Webhook-Timestamp", func(v string) string { return "+" + v }},
		{"twitch timestamp not rfc3339", "twitch", "Twitch-Eventsub-Message-Timestamp",
			func(string) string { return time.Now().Format(time.RFC1123) }},
		{"zoom timestamp fraction", "zoom", "X-Zm-Request-Timestamp",
			func(v string) string { return v + ".5" }},
		{"standard_webhooks overlong webhook-id", "standard_webhooks", "Webhook-Id",
			func(string) string { return strings.Repeat("m", 300) }},
		{"generic timestamp overlong", "generic", "X-Time",
			func(string) string { return strings.Repeat("1", 41) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := senderNamed(tc.sender).newDelivery(inst.base, time.Now())
			d.header.Set(tc.header, tc.value(d.header.Get(tc.header)))
			expectRefused(t, inst, up, d, http.StatusBadRequest)
		})
	}
}

// TestRejectsTimestampsOutsideTolerance checks that a delivery signed too
// far in the past or the future gets 401, with a configured tolerance and
// with the presets' own defaults.
func TestRejectsTimestampsOutsideTolerance(t *testing.T) {
	var ss []sender
	for _, name := range timed {
		ss = append(ss, senderNamed(name))
	}
	up := newUpstream(t)
	inst := startPatched(t, routes(up, ss, "tolerance 1m"), useGenericContent)

	for _, s := range ss {
		t.Run(s.name+"/ten minutes old", func(t *testing.T) {
			d := s.newDelivery(inst.base, time.Now().Add(-10*time.Minute))
			expectRefused(t, inst, up, d, http.StatusUnauthorized)
		})
		t.Run(s.name+"/ten minutes ahead", func(t *testing.T) {
			d := s.newDelivery(inst.base, time.Now().Add(10*time.Minute))
			expectRefused(t, inst, up, d, http.StatusUnauthorized)
		})
		t.Run(s.name+"/thirty seconds old", func(t *testing.T) {
			d := s.newDelivery(inst.base, time.Now().Add(-30*time.Second))
			expectForwarded(t, inst, up, d, http.StatusOK)
		})
	}
}

// TestPresetDefaultTolerance checks each timestamped preset's own tolerance
// when none is configured: just inside passes, just outside fails.
func TestPresetDefaultTolerance(t *testing.T) {
	cases := []struct {
		sender          string
		inside, outside time.Duration
	}{
		{"stripe", 4 * time.Minute, 6 * time.Minute},
		{"slack", 4 * time.Minute, 6 * time.Minute},
		{"standard_webhooks", 4 * time.Minute, 6 * time.Minute},
		{"zoom", 4 * time.Minute, 6 * time.Minute},
		{"twitch", 9 * time.Minute, 11 * time.Minute},
		{"linear", 45 * time.Second, 75 * time.Second},
		{"paddle", 2 * time.Second, 10 * time.Second},
	}
	var ss []sender
	for _, tc := range cases {
		ss = append(ss, senderNamed(tc.sender))
	}
	up := newUpstream(t)
	inst := startCaddy(t, routes(up, ss))

	for _, tc := range cases {
		s := senderNamed(tc.sender)
		t.Run(fmt.Sprintf("%s/%s old passes", s.name, tc.inside), func(t *testing.T) {
			d := s.newDelivery(inst.base, time.Now().Add(-tc.inside))
			expectForwarded(t, inst, up, d, http.StatusOK)
		})
		t.Run(fmt.Sprintf("%s/%s old fails", s.name, tc.outside), func(t *testing.T) {
			d := s.newDelivery(inst.base, time.Now().Add(-tc.outside))
			expectRefused(t, inst, up, d, http.StatusUnauthorized)
		})
		t.Run(fmt.Sprintf("%s/%s ahead fails", s.name, tc.outside), func(t *testing.T) {
			d := s.newDelivery(inst.base, time.Now().Add(tc.outside))
			expectRefused(t, inst, up, d, http.StatusUnauthorized)
		})
	}
}

// sizedBody returns a JSON body of exactly n bytes that no other delivery
// has.
func sizedBody(n int) []byte {
	b := plainBody()
	b = b[:len(b)-1]
	b = append(b, `,"pad":"`...)
	pad := n - len(b) - 2
	if pad < 0 {
		panic(fmt.Sprintf("body of %d bytes is too small", n))
	}
	b = append(b, bytes.Repeat([]byte{'x'}, pad)...)
	return append(b, `"}`...)
}

// TestBodyLimit checks max_body: a body at the limit passes, one byte more
// gets 413 and is not forwarded, whether the body has a Content-Length or
// is chunked.
func TestBodyLimit(t *testing.T) {
	s := senderNamed("github")
	up := newUpstream(t)
	inst := startCaddy(t, routes(up, []sender{s}, "max_body 1KB"))

	cases := []struct {
		name    string
		size    int
		chunked bool
		want    int
	}{
		{"at the limit with content-length", 1000, false, http.StatusOK},
		{"at the limit chunked", 1000, true, http.StatusOK},
		{"one byte over with content-length", 1001, false, http.StatusRequestEntityTooLarge},
		{"one byte over chunked", 1001, true, http.StatusRequestEntityTooLarge},
		{"twice the limit with content-length", 2000, false, http.StatusRequestEntityTooLarge},
		{"twice the limit chunked", 2000, true, http.StatusRequestEntityTooLarge},
		{"a megabyte chunked", 1 << 20, true, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := s.newDelivery(inst.base, time.Now())
			d.body = sizedBody(tc.size)
			d.chunked = tc.chunked
			s.sign(d, s.secret, time.Now(), inst.base)
			if tc.want == http.StatusOK {
				expectForwarded(t, inst, up, d, tc.want)
				return
			}
			expectRefused(t, inst, up, d, tc.want)
		})
	}

	t.Run("over the limit with a forged signature is still 413", func(t *testing.T) {
		d := s.newDelivery(inst.base, time.Now())
		d.body = sizedBody(1500)
		d.header.Set(s.sigHeader, "sha256="+hex.EncodeToString(make([]byte, 32)))
		expectRefused(t, inst, up, d, http.StatusRequestEntityTooLarge)
	})
}
