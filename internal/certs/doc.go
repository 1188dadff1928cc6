// Package certs loads the cluster's TLS material — a certificate with its
// key and the CA certificates that sign members — from PEM files
// (ssl-cert, ssl-key, ssl-ca) or Java keystores (java-keystore-path,
// java-truststore-path), and generates a cluster CA and certificate.
//
// Keystores are JKS (read and written by this package: jks.go) or PKCS#12
// (software.sslmate.com/src/go-pkcs12), told apart by content; JCEKS is
// refused with the keytool command that converts it. A private key entry's
// password is the store's, as in Tungsten. Every error is one sentence that
// names the setting and the file and never holds a password; errors.Is
// tells the kinds apart (errors.go).
//
// Generate writes a cluster CA and one member certificate shared by every
// host (PEM files, keystore.jks and truststore.ts), as the Tungsten guide
// does, for tpm cert.
//
// It imports internal/config, the standard library and go-pkcs12.
package certs
