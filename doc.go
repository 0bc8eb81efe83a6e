// Package webhookverify provides the webhook_verify HTTP handler for Caddy.
package webhookverify
