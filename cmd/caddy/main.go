// Command caddy is a Caddy build with the standard modules and the
// webhook_verify handler, used by the examples and the integration tests.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/webhookverify/caddy-webhook-verify"
	_ "github.com/webhookverify/caddy-webhook-verify/redisstore"
)

func main() {
	caddycmd.Main()
}
