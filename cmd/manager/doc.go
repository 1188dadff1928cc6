// Command manager runs a host's manager: membership, consensus, health
// and the site's actions (package manager). Mains are thin.
//
// It imports manager alone of Carbide.
package main
