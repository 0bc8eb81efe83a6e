// Package testkeys reads the private keys that tests sign with, including
// the RFC 9421 Appendix B.1 keys in the forms the RFC publishes them.
package testkeys

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
)

// ParsePrivatePEM reads one PEM private key: PKCS #1 RSA, SEC 1 EC, or
// PKCS #8. An RSA-PSS key in PKCS #8, whose algorithm identifier x509 does
// not read, yields its inner PKCS #1 key.
func ParsePrivatePEM(raw []byte) (any, error) {
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err == nil {
		return key, nil
	}
	var p8 struct {
		Version int
		Algo    pkix.AlgorithmIdentifier
		Key     []byte
	}
	if _, err := asn1.Unmarshal(block.Bytes, &p8); err != nil {
		return nil, err
	}
	return x509.ParsePKCS1PrivateKey(p8.Key)
}
