// Command sandbox runs a whole tungsten.ini topology on this machine, each
// host on its own loopback address with its own real mariadbd.
package main
