// Package integration holds end-to-end tests of the webhook_verify handler:
// each test runs a real Caddy in this process with the handler loaded, on a
// loopback port, and sends real HTTP deliveries through it to a recording
// upstream.
package integration
