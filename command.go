package webhookverify

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "webhook",
		Usage: "secret|keygen|sign|send|verify [flags]",
		Short: "Generates secrets and key pairs, and signs, sends or checks webhook deliveries",
		Long: `
Tools for trying webhook_verify without an account at a provider.

  caddy webhook secret                 print a new random secret
  caddy webhook keygen --out <prefix>  write a new key pair as JWK, JWKS and PEM
  caddy webhook sign   --preset ...    print the headers of a signed delivery
  caddy webhook send   --preset ... URL  sign a delivery and POST it to URL
  caddy webhook verify --preset ...    check a saved request offline

The scheme flags of sign, send and verify match the Caddyfile subdirectives
of webhook_verify: --preset, --secret, --algorithm, --signature-header and
so on. Public-key schemes sign with --private-key and verify with
--public-key. Run "caddy webhook <command> --help" for each command's flags.
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(secretCommand(), keygenCommand(), signCommand(), sendCommand(),
				verifyCommand())
			for _, sub := range cmd.Commands() {
				// a rejected delivery is an answer, not a usage error
				sub.SilenceUsage = true
			}
		},
	})
}

// schemeFlags adds the flags that describe a scheme, named as the Caddyfile
// subdirectives are, with dashes.
func schemeFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("preset", "", "provider preset (github, stripe, standard_webhooks, ...)")
	f.String("secret", "", "the shared secret, as the provider shows it")
	f.String("secret-encoding", "", "raw, hex or base64")
	f.String("algorithm", "", "hmac-sha256, hmac-sha512, hmac-sha1, ed25519, "+
		"ecdsa-p256-sha256, rsa-pss-sha256, ...; for JWS formats JOSE names such as ES256")
	f.String("signature-header", "", "header that carries the signature")
	f.String("signature-prefix", "", "text before the signature, e.g. sha256=")
	f.String("signature-encoding", "", "hex, base64 or base64url")
	f.String("signed-content", "", "template of the signed bytes, e.g. {id}.{timestamp}.{body}")
	f.String("timestamp-header", "", "header that carries the signed timestamp")
	f.String("timestamp-format", "", "unix, unix_ms or rfc3339")
	f.String("id-header", "", "header that carries the delivery ID")
	f.String("key-id-header", "", "header in which a message names its key")
	f.String("signature-format", "", "raw, der, jws_detached or jws_compact")
	f.String("body-hash-claim", "", "jws_compact: claim with the hex SHA-256 of the body")
}

// handlerFromFlags reads the scheme flags into a handler configuration.
func handlerFromFlags(cmd *cobra.Command) *Handler {
	get := func(name string) string { v, _ := cmd.Flags().GetString(name); return v }
	h := &Handler{
		Preset:            get("preset"),
		SecretEncoding:    get("secret-encoding"),
		Algorithm:         get("algorithm"),
		SignatureHeader:   get("signature-header"),
		SignaturePrefix:   get("signature-prefix"),
		SignatureEncoding: get("signature-encoding"),
		SignedContent:     get("signed-content"),
		TimestampHeader:   get("timestamp-header"),
		TimestampFormat:   get("timestamp-format"),
		IDHeader:          get("id-header"),
		KeyIDHeader:       get("key-id-header"),
		SignatureFormat:   get("signature-format"),
		BodyHashClaim:     get("body-hash-claim"),
	}
	if s := get("secret"); s != "" {
		h.Secrets = []Secret{{Value: s}}
	}
	return h
}

func secretCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret [--format whsec|hex|base64] [--bytes N]",
		Short: "Prints a new random secret",
		Long: "Prints a new secret from the system's random source: whsec_ followed by " +
			"base64 (the Standard Webhooks form, the default), hex, or base64.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			format, _ := cmd.Flags().GetString("format")
			n, _ := cmd.Flags().GetInt("bytes")
			s, err := newSecret(format, n)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), s)
			return nil
		},
	}
	cmd.Flags().String("format", "whsec", "whsec, hex or base64")
	cmd.Flags().Int("bytes", 32, "random bytes in the secret (16 to 64)")
	return cmd
}

func keygenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keygen --out <prefix> [--type ed25519|ecdsa-p256|...] [--kid <id>]",
		Short: "Writes a new signing key pair as JWK, JWKS and PEM",
		Long: "Makes a key pair for public-key schemes and writes <prefix>.private.jwk (the " +
			"private key, mode 0600, for sign and send --private-key), <prefix>.jwks (the " +
			"public key set a sender publishes) and <prefix>.pem (the public key as SPKI " +
			"PEM, for public_key). Prints the key ID and, where a preset takes one, the " +
			"public key's inline form. Never overwrites a file.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			typ, _ := cmd.Flags().GetString("type")
			kid, _ := cmd.Flags().GetString("kid")
			prefix, _ := cmd.Flags().GetString("out")
			if prefix == "" {
				return fmt.Errorf("--out: required, the path prefix of the files to write")
			}
			k, err := generateKey(typ, kid)
			if err != nil {
				return err
			}
			files := keyFilesFor(prefix)
			if err := files.write(k); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "key_id: %s\ntype: %s\nprivate_key: %s\njwks: %s\npem: %s\n", k.kid,
				typ, files.private, files.jwks, files.pem)
			for _, form := range providerForms(k.priv.Public()) {
				fmt.Fprintf(w, "%s: %s\n", form[0], form[1])
			}
			return nil
		},
	}
	cmd.Flags().String("type", "ed25519", "key type: "+keyTypeNames)
	cmd.Flags().String("kid", "", "key ID (default: the key's RFC 7638 SHA-256 thumbprint)")
	cmd.Flags().String("out", "", "path prefix of the files to write")
	return cmd
}

// newSecret makes a random secret of n bytes written in format.
func newSecret(format string, n int) (string, error) {
	if n < 16 || n > 64 {
		return "", fmt.Errorf("--bytes: want 16 to 64, got %d", n)
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	switch format {
	case "whsec":
		return "whsec_" + base64.StdEncoding.EncodeToString(b), nil
	case "hex":
		return hex.EncodeToString(b), nil
	case "base64":
		return base64.StdEncoding.EncodeToString(b), nil
	}
	return "", fmt.Errorf("--format: unknown format %q (want whsec, hex or base64)", format)
}

// deliveryFlags adds the flags that describe one delivery to sign.
func deliveryFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("body", "", "the body to sign")
	f.String("body-file", "", "read the body from this file (- for standard input)")
	f.String("id", "", "delivery ID (default: a random msg_ ID when the scheme has an ID header)")
	f.Int64("timestamp", 0, "signing time in Unix seconds (default: now)")
	f.String("method", http.MethodPost, "request method, for {method} in signed content")
	f.StringArrayP("header", "H", nil, "extra request header, Name: value (repeatable)")
	f.String("private-key", "", "sign with this private key: a JWK (as keygen writes it) "+
		"or PEM file, for public-key schemes")
	f.String("kid", "", "key ID to send with the signature (default: the JWK's kid); "+
		"with --secret, the keyid of an http_signature")
}

// privateKeyFromFlags reads --private-key, with --kid overriding its kid.
func privateKeyFromFlags(cmd *cobra.Command) (*privateKey, error) {
	path, _ := cmd.Flags().GetString("private-key")
	kid, _ := cmd.Flags().GetString("kid")
	if path == "" {
		// with a secret, --kid names the secret (http_signature's keyid)
		return nil, nil
	}
	k, err := readPrivateKey(path)
	if err != nil {
		return nil, err
	}
	if kid != "" {
		k.kid = kid
	}
	return k, nil
}

// signedRequest builds the signed delivery that sign and send produce.
func signedRequest(cmd *cobra.Command, url string) (*http.Request, []byte, error) {
	priv, err := privateKeyFromFlags(cmd)
	if err != nil {
		return nil, nil, err
	}
	h := handlerFromFlags(cmd)
	if kid, _ := cmd.Flags().GetString("kid"); kid != "" && priv == nil {
		if len(h.Secrets) == 0 {
			return nil, nil, fmt.Errorf("--kid: names the key of --private-key or --secret, " +
				"and neither is set")
		}
		h.Secrets[0].KeyID = kid
	}
	s, err := newKeySigner(h, priv)
	if err != nil {
		return nil, nil, err
	}
	body, err := readBodyFlag(cmd)
	if err != nil {
		return nil, nil, err
	}

	method, _ := cmd.Flags().GetString("method")
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	headers, _ := cmd.Flags().GetStringArray("header")
	for _, line := range headers {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, nil, fmt.Errorf("--header: want \"Name: value\", got %q", line)
		}
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}

	id, _ := cmd.Flags().GetString("id")
	if id == "" && len(s.scheme.idHeaders) > 0 {
		id = randomID()
	}
	at := time.Now()
	if ts, _ := cmd.Flags().GetInt64("timestamp"); ts != 0 {
		at = time.Unix(ts, 0)
	}

	d := &delivery{body: body, id: id, method: method, url: url}
	if err := s.sign(req.Header, d, at); err != nil {
		return nil, nil, err
	}
	return req, body, nil
}

func readBodyFlag(cmd *cobra.Command) ([]byte, error) {
	body, _ := cmd.Flags().GetString("body")
	file, _ := cmd.Flags().GetString("body-file")
	switch {
	case file == "-":
		return io.ReadAll(cmd.InOrStdin())
	case file != "":
		return os.ReadFile(file)
	}
	return []byte(body), nil
}

func randomID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return "msg_" + hex.EncodeToString(b)
}

func signCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use: "sign --preset <name> (--secret <secret> | --private-key <file>) --body <body> " +
			"[flags]",
		Short: "Prints the headers of a signed delivery",
		Long: "Signs a body as a sender of the scheme would and prints the headers to " +
			"send with it, one per line, ready for curl -H.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, _ := cmd.Flags().GetString("url")
			req, _, err := signedRequest(cmd, url)
			if err != nil {
				return err
			}
			printHeaders(cmd.OutOrStdout(), req.Header)
			return nil
		},
	}
	schemeFlags(cmd)
	deliveryFlags(cmd)
	cmd.Flags().String("url", "http://localhost/", "request URL, for {url} in signed content")
	return cmd
}

func printHeaders(w io.Writer, h http.Header) {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, v := range h[name] {
			fmt.Fprintf(w, "%s: %s\n", name, v)
		}
	}
}

func sendCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use: "send <url> --preset <name> (--secret <secret> | --private-key <file>) " +
			"--body <body> [flags]",
		Short: "Signs a delivery and POSTs it to a URL",
		Long: "Signs a body as a sender of the scheme would, sends it to the URL and " +
			"prints the response status and body. Exits non-zero unless the answer is a 2xx.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, _, err := signedRequest(cmd, args[0])
			if err != nil {
				return err
			}
			if req.Header.Get("Content-Type") == "" {
				req.Header.Set("Content-Type", "application/json")
			}
			client := &http.Client{Timeout: 30 * time.Second}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			reply, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n%s\n", resp.Status, reply)
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				return fmt.Errorf("delivery not accepted: %s", resp.Status)
			}
			return nil
		},
	}
	schemeFlags(cmd)
	deliveryFlags(cmd)
	return cmd
}

func verifyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use: "verify --preset <name> (--secret <secret> | --public-key <key>) " +
			"--request <file> [--at <unix>]",
		Short: "Checks a saved request offline",
		Long: "Reads an HTTP/1.1 request as it went over the wire (request line, headers, " +
			"blank line, body) and checks it as webhook_verify would, without the replay " +
			"store. Prints the reason it would be refused, or the key ID that verifies it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rsn, d, err := verifySaved(cmd)
			if err != nil {
				return err
			}
			if rsn != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "rejected: %s (status %d)\n", rsn,
					reasonStatus[rsn])
				return fmt.Errorf("delivery rejected")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "verified: key_id=%s id=%s timestamp=%s\n",
				d.keyID, d.id, d.timestamp)
			return nil
		},
	}
	schemeFlags(cmd)
	cmd.Flags().String("request", "", "file holding the saved request (- for standard input)")
	cmd.Flags().StringArray("public-key", nil, "a public key as public_key takes it: a PEM, "+
		"JWK or JWKS file, or an inline whpk_, hex or base64 SPKI key (repeatable)")
	cmd.Flags().Int64("at", 0, "check timestamps as of this Unix time (default: now)")
	return cmd
}

// verifySaved runs the verifier on a saved request.
func verifySaved(cmd *cobra.Command) (reason, *delivery, error) {
	h := handlerFromFlags(cmd)
	pubs, _ := cmd.Flags().GetStringArray("public-key")
	for _, v := range pubs {
		h.PublicKeys = append(h.PublicKeys, PublicKey{Value: v})
	}
	if len(h.Secrets) == 0 && len(h.PublicKeys) == 0 {
		return "", nil, fmt.Errorf("--secret or --public-key: required")
	}
	if err := h.provisionScheme(); err != nil {
		return "", nil, err
	}
	// no JWKS source can be configured here, so no context is needed
	h.logger = zap.NewNop()
	if err := h.provisionKeys(caddy.Context{}); err != nil {
		return "", nil, err
	}
	h.MaxBody = defaultMaxBody

	path, _ := cmd.Flags().GetString("request")
	var src io.Reader = cmd.InOrStdin()
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return "", nil, fmt.Errorf("--request: %w", err)
		}
		defer f.Close()
		src = f
	}
	br := bufio.NewReader(src)
	req, err := http.ReadRequest(br)
	if err != nil {
		return "", nil, fmt.Errorf("--request: reading the saved request: %w", err)
	}
	if req.ContentLength == 0 && len(req.TransferEncoding) == 0 &&
		req.Header.Get("Content-Length") == "" {
		// A request saved by hand often has no Content-Length: its body is
		// the rest of the file.
		rest, err := io.ReadAll(io.LimitReader(br, defaultMaxBody+1))
		if err != nil {
			return "", nil, fmt.Errorf("--request: reading the body: %w", err)
		}
		req.Body = io.NopCloser(bytes.NewReader(rest))
		req.ContentLength = int64(len(rest))
	}

	if at, _ := cmd.Flags().GetInt64("at"); at != 0 {
		old := now
		now = func() time.Time { return time.Unix(at, 0) }
		defer func() { now = old }()
	}
	var d delivery
	return h.verify(req, &d, new(bytes.Buffer)), &d, nil
}
