// Command tprovision rebuilds this host's database from another host's
// (see shell/tprovision and docs/operations.md).
//
// Mains are thin: the tool is shell/tprovision.
//
// It imports shell/tprovision alone of Carbide.
package main
