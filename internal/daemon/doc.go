// Package daemon starts, stops and reports agent processes the way the
// guide's `replicator start|stop|status` do: a detached process in a
// session of its own, logging to a file it rotates (log-max-size, five
// old files kept), recorded in a pid file it writes itself. When tpm
// installed the agent's systemd unit in /etc/systemd/system and systemd
// runs the machine, start, stop and status go through systemctl instead,
// and the agent its unit started logs to standard error, for journald.
//
// Liveness comes from /proc/PID/stat and /proc/PID/cmdline, never from
// kill -0 (this machine's init reaps orphans late: a zombie looks alive).
// It imports internal/config, internal/install, internal/systemd,
// internal/fileutil, internal/netns and internal/proc of Carbide, and must not import any
// agent, shell or rpc package: the agents import it.
package daemon
