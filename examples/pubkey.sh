#!/bin/sh
# Public keys end to end with the Caddy binary alone: makes a partner's key
# pair, serves its public key set on http://127.0.0.1:8082 as the partner
# would on its own site, and sends signed, tampered and forged deliveries to
# examples/pubkey.caddyfile, printing what Caddy answers; then Standard
# Webhooks v1a deliveries signed with the demo key in examples/keys. Needs
# curl for the tampered delivery.
# Usage: CADDY=/path/to/caddy examples/pubkey.sh [base-url]
# JWKS_ADDR=host:port serves the key set elsewhere (the Caddyfile must match).
set -eu

caddy=${CADDY:-caddy}
base=${1:-http://127.0.0.1:8081}
jwks_addr=${JWKS_ADDR:-127.0.0.1:8082}
demo_key=$(dirname "$0")/keys/standard-demo.private.jwk

work=$(mktemp -d)
server=
cleanup() {
	if [ -n "$server" ]; then
		kill "$server" 2>/dev/null || true
		wait "$server" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The partner's key pair, and an attacker's. Only the partner's public key
# set goes into the served directory; the private keys stay outside it.
mkdir "$work/keys" "$work/www"
kid=$("$caddy" webhook keygen --out "$work/keys/partner" | sed -n 's/^key_id: //p')
"$caddy" webhook keygen --out "$work/keys/attacker" --kid attacker-1 >/dev/null
cp "$work/keys/partner.jwks" "$work/www/jwks.json"
echo "partner key: $kid"

"$caddy" file-server --listen "$jwks_addr" --root "$work/www" >"$work/file-server.log" 2>&1 &
server=$!
tries=0
until curl -fs -o /dev/null "http://$jwks_addr/jwks.json"; do
	tries=$((tries + 1))
	if [ "$tries" -ge 50 ]; then
		echo "the key set server did not start on $jwks_addr:" >&2
		cat "$work/file-server.log" >&2
		exit 1
	fi
	sleep 0.1
done

# show LABEL OUTPUT: print a label, the reply and the status of a send.
show() {
	printf '%-16s %s [%s]\n' "$1" "$(printf '%s\n' "$2" | sed -n '2,$p')" \
		"$(printf '%s\n' "$2" | sed -n '1{s/ .*//;p;}')"
}

# send KEY [FLAGS...]: sign a fresh delivery with KEY's private key and POST it.
send() {
	key=$1
	shift
	"$caddy" webhook send "$base/partner" --preset jws \
		--private-key "$work/keys/$key.private.jwk" "$@" \
		--body "{\"type\":\"invoice.paid\",\"id\":\"evt_$(date +%s)\"}" 2>/dev/null ||
		true # send exits non-zero on a refusal, which is shown all the same
}

# Until Caddy has fetched the new key set it answers 503 (no set yet) or
# unknown_key (a set without this key, refetched at most once a second).
tries=0
while out=$(send partner) && case $out in 503*|*unknown_key*) true ;; *) false ;; esac; do
	tries=$((tries + 1))
	[ "$tries" -lt 20 ] || break
	sleep 0.5
done
show signed "$out"

# Signed for one body, sent with another.
body='{"type":"invoice.paid","amount":100}'
headers=$("$caddy" webhook sign --preset jws --private-key "$work/keys/partner.private.jwk" \
	--body "$body")
sig=$(printf '%s\n' "$headers" | sed -n 's/^X-Jws-Signature: //p')
out=$(curl -sS -X POST "$base/partner" -H 'Content-Type: application/json' \
	-H "X-JWS-Signature: $sig" --data-binary '{"type":"invoice.paid","amount":100000}' \
	-w '\n%{http_code}')
show tampered "$(printf '%s\n' "$out" | tail -n 1)
$(printf '%s\n' "$out" | sed '$d')"

# The attacker's key, claiming the partner's key ID, then under its own.
show forged "$(send attacker --kid "$kid")"
show "unknown key" "$(send attacker)"

# Standard Webhooks v1a with the demo key, whose public half pubkey.caddyfile
# holds; the same bytes again, which the signed ID makes a replay; and a
# delivery signed with the attacker's key.
now=$(date +%s)
id=msg_$now$$
standard() {
	"$caddy" webhook send "$base/standard" --preset standard_webhooks --private-key "$1" \
		--id "$2" --timestamp "$now" --body '{"type":"user.created"}' 2>/dev/null || true
}
show "standard signed" "$(standard "$demo_key" "$id")"
show "standard replay" "$(standard "$demo_key" "$id")"
show "standard forged" "$(standard "$work/keys/attacker.private.jwk" "${id}_forged")"
