// Command connector runs a host's connector: the proxy between applications
// and the site's primary and replicas (router). Mains are thin: the
// connector is package router.
//
// It imports router alone of Carbide.
package main
