// Command cctrl is the operator shell of a Carbide cluster: an interactive
// shell on a terminal, a script runner on a pipe (cctrl < steps.txt), a
// one-liner with -e. Run as mm_cctrl from the cross-site install, or with
// -mm, it acts on the site's cross-site replicators.
//
// Mains are thin: flags and exit codes here, the shell in shell/cctrl.
//
// It imports shell/cctrl alone of Carbide.
package main
