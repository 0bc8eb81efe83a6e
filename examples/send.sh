#!/bin/sh
# Sends signed and forged deliveries to the example Caddyfile and prints what
# Caddy answers. Needs curl and openssl. Usage: examples/send.sh [base-url]
set -eu

base=${1:-http://localhost:8080}
now=$(date +%s)

# post PATH BODY [HEADER...]: send one delivery and print the status and reply.
post() {
	path=$1 body=$2
	shift 2
	for h in "$@"; do set -- "$@" -H "$h"; shift; done
	printf '%-40s ' "$label"
	curl -sS -w ' [%{http_code}]\n' -X POST "$base$path" \
		-H 'Content-Type: application/json' "$@" --data-binary "$body"
}

hmac_hex() { openssl dgst -sha256 -hmac "$1" -r | cut -d' ' -f1; }
hmac_b64() { openssl dgst -sha256 -mac HMAC -macopt "hexkey:$1" -binary | openssl base64 -A; }

# GitHub: the signature of this body is fixed, so it is accepted once and
# then refused as a replay for 24 hours (restart Caddy to send it again).
body='{"zen":"Design for failure.","hook_id":1}'
sig=$(printf '%s' "$body" | hmac_hex "It's a Secret to Everybody")
label="github signed" post /github "$body" "X-Hub-Signature-256: sha256=$sig" \
	"X-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958"
label="github replayed" post /github "$body" "X-Hub-Signature-256: sha256=$sig" \
	"X-GitHub-Delivery: another-id"
label="github forged" post /github '{"zen":"forged"}' "X-Hub-Signature-256: sha256=$sig"

# Stripe: the timestamp is signed, so each run makes a fresh delivery.
body="{\"id\":\"evt_$now\",\"type\":\"invoice.paid\"}"
sig=$(printf '%s.%s' "$now" "$body" | hmac_hex whsec_example_stripe_secret)
label="stripe signed" post /stripe "$body" "Stripe-Signature: t=$now,v1=$sig"
label="stripe wrong secret" post /stripe "$body" "Stripe-Signature: t=$now,v1=$(
	printf '%s.%s' "$now" "$body" | hmac_hex whsec_not_the_secret)"
old=$((now - 600))
sig=$(printf '%s.%s' "$old" "$body" | hmac_hex whsec_example_stripe_secret)
label="stripe ten minutes old" post /stripe "$body" "Stripe-Signature: t=$old,v1=$sig"

# Standard Webhooks, signed with the newer of the two configured secrets.
key=$(printf '%s' 'c2Vjb25kIGV4YW1wbGUgc2VjcmV0IGtleQ==' | openssl base64 -d -A | od -An -tx1 |
	tr -d ' \n')
id="msg_$now"
body='{"type":"user.created"}'
sig=$(printf '%s.%s.%s' "$id" "$now" "$body" | hmac_b64 "$key")
label="standard signed" post /standard "$body" "webhook-id: $id" \
	"webhook-timestamp: $now" "webhook-signature: v1,$sig"
label="standard replayed" post /standard "$body" "webhook-id: $id" \
	"webhook-timestamp: $now" "webhook-signature: v1,$sig"
label="standard malformed" post /standard "$body" "webhook-id: $id" \
	"webhook-timestamp: $now" "webhook-signature: v1,not-base64!"

# Slack: the url_verification handshake, answered by Caddy, then a command.
slack() { printf 'v0:%s:%s' "$1" "$2" | hmac_hex 8f742231b10e8888abcd99yyyzzz85a5; }
body='{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}'
label="slack handshake" post /slack "$body" "X-Slack-Request-Timestamp: $now" \
	"X-Slack-Signature: v0=$(slack "$now" "$body")"
body='token=x&command=%2Fdeploy&text=prod'
label="slack signed" post /slack "$body" "X-Slack-Request-Timestamp: $now" \
	"X-Slack-Signature: v0=$(slack "$now" "$body")"
label="slack forged" post /slack "$body" "X-Slack-Request-Timestamp: $now" \
	"X-Slack-Signature: v0=$(slack "$now" 'token=x&command=%2Fdeploy&text=staging')"
