#!/bin/sh
# RFC 9421 HTTP Message Signatures against the /signed route of the example
# Caddyfile: signs requests with the HMAC secret of partner-1 using caddy
# webhook send, and sends a replay, a forgery, a tampered body and a stale
# signature, printing what Caddy answers. Needs the Caddy built with this
# plugin, and curl for the tampered body.
# Usage: CADDY=/path/to/caddy examples/signed.sh [base-url]
set -eu

caddy=${CADDY:-caddy}
base=${1:-http://localhost:8080}
secret=example-http-signature-secret
body='{"event":"order.paid","id":1}'
now=$(date +%s)
nonce=n_$now$$

# show LABEL OUTPUT: print a label, the reply and the status of a send.
show() {
	printf '%-40s %s [%s]\n' "$1" "$(printf '%s\n' "$2" | sed -n '2,$p')" \
		"$(printf '%s\n' "$2" | sed -n '1{s/ .*//;p;}')"
}

# send SECRET NONCE CREATED: sign the body over @method, @target-uri and
# Content-Digest, with created and nonce, and POST it.
send() {
	"$caddy" webhook send "$base/signed" --preset http_signature --secret "$1" \
		--id "$2" --timestamp "$3" --body "$body" 2>/dev/null ||
		true # send exits non-zero on a refusal, which is shown all the same
}

# A fresh request, then the very same bytes again: the nonce is remembered.
show "rfc9421 signed" "$(send "$secret" "$nonce" "$now")"
show "rfc9421 replayed" "$(send "$secret" "$nonce" "$now")"

# Signed with a secret Caddy does not hold.
show "rfc9421 wrong secret" "$(send not-the-secret "${nonce}_forged" "$now")"

# Signed for one body, sent with another: the signature holds, since it
# covers the Content-Digest header, but the body no longer matches it.
headers=$("$caddy" webhook sign --preset http_signature --secret "$secret" \
	--url "$base/signed" --id "${nonce}_tampered" --body "$body")
field() { printf '%s\n' "$headers" | sed -n "s/^$1: //p"; }
printf '%-40s ' "rfc9421 tampered"
curl -sS -w ' [%{http_code}]\n' -X POST "$base/signed" -H 'Content-Type: application/json' \
	-H "Content-Digest: $(field Content-Digest)" -H "Signature: $(field Signature)" \
	-H "Signature-Input: $(field Signature-Input)" --data-binary '{"event":"order.paid","id":2}'

# Signed correctly, but created ten minutes ago: beyond the 5m tolerance.
show "rfc9421 ten minutes old" "$(send "$secret" "${nonce}_old" "$((now - 600))")"
