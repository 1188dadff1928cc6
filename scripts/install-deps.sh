#!/usr/bin/env bash
# install-deps.sh: installs what Carbide's tests, sandbox and benchmarks need
# (MariaDB server and client, sysbench, HAProxy for the connector baseline,
# Java's keytool to check that Java reads the keystores tpm cert writes,
# mariadb-test and MariaDB's regression tests for the conformance suite,
# systemd-analyze to verify the systemd units tpm install writes),
# from Debian's packages. Idempotent: does nothing when everything is there.
# Prints one line per thing it does.
set -euo pipefail

say() { printf 'install-deps: %s\n' "$*"; }

# PATH may lack sbin for non-login shells; mariadbd lives in /usr/sbin.
export PATH="$PATH:/usr/sbin:/sbin"

have() { command -v "$1" >/dev/null 2>&1; }

missing=()
have mariadbd || missing+=(mariadb-server)
have mariadb || missing+=(mariadb-client)
have mariadb-install-db || { [[ " ${missing[*]-} " == *" mariadb-server "* ]] || missing+=(mariadb-server); }
have mariadb-backup || missing+=(mariadb-backup)
have sysbench || missing+=(sysbench)
have haproxy || missing+=(haproxy)
have rsync || missing+=(rsync)
# The partition tests cut a sandbox host off with iptables (as root).
have iptables || missing+=(iptables)
have keytool || missing+=(default-jre-headless)
# The conformance suite runs MariaDB's regression tests with mariadb-test.
have mariadb-test || missing+=(mariadb-test)
[ -d /usr/share/mysql/mysql-test/suite ] || missing+=(mariadb-test-data)
# The units test runs systemd-analyze verify on the units tpm install writes.
have systemd-analyze || missing+=(systemd)

if [ ${#missing[@]} -eq 0 ]; then
  say "mariadbd, mariadb, mariadb-backup, sysbench, haproxy, rsync, iptables, keytool, systemd-analyze, mariadb-test and its test data are present; nothing to do"
  exit 0
fi

if ! have apt-get; then
  say "cannot install ${missing[*]}: apt-get is not available on this machine; install them with your package manager and run again" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if have sudo; then sudo="sudo"; else
    say "cannot install ${missing[*]}: not root and sudo is not available; run this script as root" >&2
    exit 1
  fi
fi

say "running apt-get update"
$sudo apt-get update -qq >/dev/null
say "installing ${missing[*]}"
# policy-rc.d keeps the packages from starting their services during install.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  added_policy=1
fi
trap '[ "$added_policy" = 1 ] && $sudo rm -f "$policy"' EXIT
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# The distribution's own MariaDB must not hold port 3306 or 13306.
if have systemctl && systemctl is-active --quiet mariadb 2>/dev/null; then
  say "stopping and disabling the distribution's mariadb service"
  $sudo systemctl stop mariadb || true
  $sudo systemctl disable mariadb >/dev/null 2>&1 || true
fi
if have service && service mariadb status >/dev/null 2>&1; then
  say "stopping the distribution's mariadb service"
  $sudo service mariadb stop >/dev/null 2>&1 || true
fi
if have systemctl && systemctl is-active --quiet haproxy 2>/dev/null; then
  say "stopping and disabling the distribution's haproxy service"
  $sudo systemctl stop haproxy || true
  $sudo systemctl disable haproxy >/dev/null 2>&1 || true
fi

for p in mariadbd mariadb mariadb-install-db sysbench keytool mariadb-test systemd-analyze; do
  have "$p" || { say "installation finished but $p is still missing; check the apt output above" >&2; exit 1; }
done
say "done: $(mariadbd --version | head -1)"
