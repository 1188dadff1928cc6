// Command tpm validates a tungsten.ini, installs and updates a host's
// Carbide install directories, and prints the configuration back.
package main
