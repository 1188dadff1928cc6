// Command sandbox runs a whole tungsten.ini topology on this machine, each
// host on its own loopback address with its own real mariadbd.
//
// It imports internal/sandbox and internal/install alone of Carbide.
package main
