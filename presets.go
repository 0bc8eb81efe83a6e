package webhookverify

import "time"

// presets are the provider schemes that a bare preset name selects. Each
// follows its provider's public documentation: header names, signed bytes,
// encodings and the provider's own timestamp tolerance. Where a provider
// publishes no tolerance, five minutes is used, the most common choice.
var presets = map[string]scheme{
	// GitHub: HMAC-SHA256 of the body, hex, behind "sha256=". No signed
	// timestamp; X-GitHub-Delivery is not covered by the signature.
	"github": {
		algorithm:        "hmac-sha256",
		signatureHeaders: []string{"X-Hub-Signature-256"},
		prefix:           "sha256=",
		encoding:         "hex",
		content:          "{body}",
		idHeaders:        []string{"X-GitHub-Delivery"},
		secretEncoding:   "raw",
	},

	// Gitea, Forgejo and Gogs: HMAC-SHA256 of the body, bare hex. Each sends
	// the header of its own name; Gitea and Forgejo also send Gogs's.
	"gitea": {
		algorithm: "hmac-sha256",
		signatureHeaders: []string{
			"X-Gitea-Signature", "X-Forgejo-Signature", "X-Gogs-Signature",
		},
		encoding:       "hex",
		content:        "{body}",
		idHeaders:      []string{"X-Gitea-Delivery", "X-Forgejo-Delivery", "X-Gogs-Delivery"},
		secretEncoding: "raw",
	},

	// Stripe: "t=<unix>,v1=<hex>,..." over "<t>.<body>", keyed with the whole
	// whsec_ string as text. Several v1 entries appear while a secret rolls.
	"stripe": {
		algorithm:        "hmac-sha256",
		signatureHeaders: []string{"Stripe-Signature"},
		format:           formatStripe,
		encoding:         "hex",
		content:          "{timestamp}.{body}",
		timestampFormat:  "unix",
		tolerance:        5 * time.Minute,
		secretEncoding:   "raw",
	},

	// Slack: "v0=<hex>" over "v0:<timestamp>:<body>".
	"slack": {
		algorithm:        "hmac-sha256",
		signatureHeaders: []string{"X-Slack-Signature"},
		prefix:           "v0=",
		encoding:         "hex",
		content:          "v0:{timestamp}:{body}",
		timestampHeader:  "X-Slack-Request-Timestamp",
		timestampFormat:  "unix",
		tolerance:        5 * time.Minute,
		secretEncoding:   "raw",
	},

	// Shopify: base64 HMAC-SHA256 of the body; no signed timestamp or ID.
	"shopify": {
		algorithm:        "hmac-sha256",
		signatureHeaders: []string{"X-Shopify-Hmac-Sha256"},
		encoding:         "base64",
		content:          "{body}",
		idHeaders:        []string{"X-Shopify-Webhook-Id"},
		secretEncoding:   "raw",
	},

	// Standard Webhooks (symmetric v1): "v1,<base64> ..." over
	// "<id>.<timestamp>.<body>", keyed with the base64 after "whsec_".
	"standard_webhooks": {
		algorithm:        "hmac-sha256",
		signatureHeaders: []string{"webhook-signature"},
		format:           formatStandard,
		encoding:         "base64",
		content:          "{id}.{timestamp}.{body}",
		timestampHeader:  "webhook-timestamp",
		timestampFormat:  "unix",
		idHeaders:        []string{"webhook-id"},
		tolerance:        5 * time.Minute,
		secretEncoding:   "base64",
	},

	// Twitch EventSub: "sha256=<hex>" over message ID, timestamp and body
	// joined without separators; RFC 3339 timestamps, ten minutes allowed.
	"twitch": {
		algorithm:        "hmac-sha256",
		signatureHeaders: []string{"Twitch-Eventsub-Message-Signature"},
		prefix:           "sha256=",
		encoding:         "hex",
		content:          "{id}{timestamp}{body}",
		timestampHeader:  "Twitch-Eventsub-Message-Timestamp",
		timestampFormat:  "rfc3339",
		idHeaders:        []string{"Twitch-Eventsub-Message-Id"},
		tolerance:        10 * time.Minute,
		secretEncoding:   "raw",
	},

	// Zoom: "v0=<hex>" over "v0:<timestamp>:<body>", keyed with the app's
	// secret token.
	"zoom": {
		algorithm:        "hmac-sha256",
		signatureHeaders: []string{"x-zm-signature"},
		prefix:           "v0=",
		encoding:         "hex",
		content:          "v0:{timestamp}:{body}",
		timestampHeader:  "x-zm-request-timestamp",
		timestampFormat:  "unix",
		tolerance:        5 * time.Minute,
		secretEncoding:   "raw",
	},

	// Paddle Billing: "ts=<unix>;h1=<hex>" over "<ts>:<body>". Paddle's SDKs
	// allow five seconds of skew, and so does this preset.
	"paddle": {
		algorithm:        "hmac-sha256",
		signatureHeaders: []string{"Paddle-Signature"},
		format:           formatPaddle,
		encoding:         "hex",
		content:          "{timestamp}:{body}",
		timestampFormat:  "unix",
		tolerance:        5 * time.Second,
		secretEncoding:   "raw",
	},

	// Linear: hex HMAC-SHA256 of the body. The time is the webhookTimestamp
	// field of the signed JSON body, in milliseconds, allowed one minute.
	"linear": {
		algorithm:        "hmac-sha256",
		signatureHeaders: []string{"Linear-Signature"},
		encoding:         "hex",
		content:          "{body}",
		timestampField:   "webhookTimestamp",
		timestampFormat:  "unix_ms",
		idHeaders:        []string{"Linear-Delivery"},
		tolerance:        time.Minute,
		secretEncoding:   "raw",
	},

	// Square: base64 HMAC-SHA256 over the notification URL followed by the
	// body, keyed with the subscription's signature key. The URL is the one
	// configured at Square; behind another proxy, set external_origin.
	"square": {
		algorithm:        "hmac-sha256",
		signatureHeaders: []string{"x-square-hmacsha256-signature"},
		encoding:         "base64",
		content:          "{url}{body}",
		secretEncoding:   "raw",
	},

	// Twilio: base64 HMAC-SHA1, keyed with the auth token, over the full
	// URL followed, for form posts, by every POST parameter sorted by name,
	// each name directly followed by its value. A JSON body is bound instead
	// by the hex SHA-256 in the URL's bodySHA256 parameter. No signed time.
	"twilio": {
		algorithm:        "hmac-sha1",
		signatureHeaders: []string{"X-Twilio-Signature"},
		encoding:         "base64",
		content:          "{url}{body}",
		bodyForm:         bodyTwilio,
		idHeaders:        []string{"I-Twilio-Idempotency-Token"},
		secretEncoding:   "raw",
	},

	// GitLab: the secret token itself in X-Gitlab-Token. It proves the sender
	// knows the token but covers neither the body nor a time: weaker than a
	// signature, and only as safe as the TLS connection that carries it.
	"gitlab": {
		algorithm:        "token",
		signatureHeaders: []string{"X-Gitlab-Token"},
		idHeaders:        []string{"X-Gitlab-Event-UUID"},
		secretEncoding:   "raw",
	},
}

// publicPresets are the public-key schemes of presets. Providers that sign
// only with private keys are here alone; standard_webhooks is in both maps
// and takes this form when public keys are configured instead of secrets.
var publicPresets = map[string]scheme{
	// Standard Webhooks asymmetric (v1a): "v1a,<base64>" Ed25519 signatures
	// over "<id>.<timestamp>.<body>"; public keys are written "whpk_<base64>".
	"standard_webhooks": {
		algorithm:        "ed25519",
		signatureHeaders: []string{"webhook-signature"},
		format:           formatStandard,
		version:          "v1a",
		encoding:         "base64",
		content:          "{id}.{timestamp}.{body}",
		timestampHeader:  "webhook-timestamp",
		timestampFormat:  "unix",
		idHeaders:        []string{"webhook-id"},
		tolerance:        5 * time.Minute,
	},

	// Discord interactions: hex Ed25519 over the timestamp followed by the
	// body; the application's public key is shown as 64 hex digits.
	"discord": {
		algorithm:        "ed25519",
		signatureHeaders: []string{"X-Signature-Ed25519"},
		encoding:         "hex",
		content:          "{timestamp}{body}",
		timestampHeader:  "X-Signature-Timestamp",
		timestampFormat:  "unix",
		tolerance:        5 * time.Minute,
	},

	// Twilio SendGrid Event Webhook: base64 DER ECDSA P-256 with SHA-256 over
	// the timestamp followed by the body; the verification key is base64 SPKI.
	"sendgrid": {
		algorithm:        "ecdsa-p256-sha256",
		signatureHeaders: []string{"X-Twilio-Email-Event-Webhook-Signature"},
		encoding:         "base64",
		sigFormat:        "der",
		content:          "{timestamp}{body}",
		timestampHeader:  "X-Twilio-Email-Event-Webhook-Timestamp",
		timestampFormat:  "unix",
		tolerance:        5 * time.Minute,
	},

	// Detached JWS over the raw body (RFC 7515 Appendix F), as UK Open
	// Banking sends it; "b64": false (RFC 7797) is accepted. The key is
	// named by the JWS "kid" and looked up in the configured keys or JWKS.
	"jws": {
		signatureHeaders: []string{"X-JWS-Signature"},
		sigFormat:        "jws_detached",
		content:          "{body}",
		tolerance:        5 * time.Minute,
	},

	// Plaid: a compact ES256 JWS in Plaid-Verification whose claims carry
	// the hex SHA-256 of the body (request_body_sha256) and an issued-at
	// time; Plaid's own libraries allow five minutes.
	"plaid": {
		algorithm:        "ES256",
		signatureHeaders: []string{"Plaid-Verification"},
		sigFormat:        "jws_compact",
		content:          "{body}",
		bodyHashClaim:    defaultBodyHashClaim,
		tolerance:        5 * time.Minute,
	},
}

// presetNames lists the preset names in the order the docs present them.
var presetNames = []string{
	"github", "gitea", "stripe", "slack", "shopify", "standard_webhooks",
	"twitch", "zoom", "paddle", "linear", "square", "twilio", "gitlab", "discord", "sendgrid",
	"jws", "plaid", httpSigPreset,
}
