#!/bin/sh
# Regenerates the keystore fixtures with a real Java keytool (Java 17 made
# the committed files). The tests only read the files, so machines without
# Java run them as well. Every store's password is "secret".
#
#   keystore.jks    JKS: private key entry "member" (RSA 2048), chain member → ca
#   truststore.jks  JKS: trusted certificate entry "ca"
#   keystore.p12    PKCS#12 (keytool default, PBES2/AES): private key entry
#                   "member" (EC P-256), chain member → ca
#   truststore.p12  PKCS#12: trusted certificate entry "ca"
#   selfsigned.jks  JKS: one self-signed private key entry, no truststore
#   keypass.jks     JKS: a key password ("another") that differs from the store's
#   store.jceks     JCEKS, which Carbide refuses with a sentence
#   two.jks         JKS: two self-signed private key entries, "first" and "second"
#   two.p12         PKCS#12: the same, which Carbide refuses (one key per file)
#
# Usage: cd internal/certs/testdata && sh gen.sh
set -eu
cd "$(dirname "$0")"
rm -f keystore.jks truststore.jks keystore.p12 truststore.p12 selfsigned.jks keypass.jks store.jceks two.jks two.p12
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
kt() { keytool -noprompt "$@" >/dev/null 2>&1 || keytool -noprompt "$@"; }
V=36500 # days: the fixtures outlive the tests

# The CA.
kt -genkeypair -keystore "$tmp/ca.p12" -storepass secret -alias ca -keyalg EC -groupname secp256r1 \
	-dname "CN=Fixture CA" -ext bc:c -validity $V
kt -exportcert -rfc -keystore "$tmp/ca.p12" -storepass secret -alias ca -file "$tmp/ca.pem"

# member: generate a key in STORE (TYPE), have the CA sign it, import the chain.
member() { # STORE TYPE KEYALG...
	store=$1 type=$2; shift 2
	kt -genkeypair -keystore "$store" -storetype "$type" -storepass secret -keypass secret -alias member "$@" \
		-dname "CN=member" -validity $V
	kt -certreq -keystore "$store" -storetype "$type" -storepass secret -alias member -file "$tmp/member.csr"
	kt -gencert -keystore "$tmp/ca.p12" -storepass secret -alias ca -infile "$tmp/member.csr" -outfile "$tmp/member.pem" \
		-rfc -validity $V -ext san=dns:localhost,ip:127.0.0.1 -ext ku:c=digitalSignature,keyEncipherment \
		-ext eku=serverAuth,clientAuth
	cat "$tmp/member.pem" "$tmp/ca.pem" >"$tmp/chain.pem"
	kt -importcert -keystore "$store" -storetype "$type" -storepass secret -alias member -file "$tmp/chain.pem"
}
member keystore.jks JKS -keyalg RSA -keysize 2048
member keystore.p12 PKCS12 -keyalg EC -groupname secp256r1

kt -importcert -keystore truststore.jks -storetype JKS -storepass secret -alias ca -file "$tmp/ca.pem"
kt -importcert -keystore truststore.p12 -storetype PKCS12 -storepass secret -alias ca -file "$tmp/ca.pem"

kt -genkeypair -keystore selfsigned.jks -storetype JKS -storepass secret -keypass secret -alias self \
	-keyalg EC -groupname secp256r1 -dname "CN=self" -ext san=dns:localhost,ip:127.0.0.1 -validity $V
kt -genkeypair -keystore keypass.jks -storetype JKS -storepass secret -keypass another -alias member \
	-keyalg EC -groupname secp256r1 -dname "CN=member" -validity $V
kt -genkeypair -keystore store.jceks -storetype JCEKS -storepass secret -keypass secret -alias member \
	-keyalg EC -groupname secp256r1 -dname "CN=member" -validity $V
for type in JKS PKCS12; do
	store=two.jks
	[ $type = PKCS12 ] && store=two.p12
	for alias in first second; do
		kt -genkeypair -keystore $store -storetype $type -storepass secret -keypass secret -alias $alias \
			-keyalg EC -groupname secp256r1 -dname "CN=$alias" -validity $V
	done
done
