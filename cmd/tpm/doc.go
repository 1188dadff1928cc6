// Command tpm validates a tungsten.ini, installs and updates a host's
// Carbide install directories, and prints the configuration back.
//
// It imports shell/tpm alone of Carbide.
package main
