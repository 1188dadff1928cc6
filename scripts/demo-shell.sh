#!/usr/bin/env bash
# demo-shell.sh DIR HOST: opens the operator shell on HOST of the sandbox in
# DIR, bound to HOST's installs the way the guide's step 6 does
# (source <cluster>/share/env.sh; source <replicator>/share/env.sh).
set -euo pipefail
dir=$1 host=$2
top=$(cd "$(dirname "$0")/.." && pwd)
line=$("$top/bin/sandbox" env "$host" --dir "$dir")
eval "$line"
addr=$(awk -F= -v h="$host" '$1==h {print $2}' "$dir/tungsten.ini" | tail -1)
if [ -x "$top/bin/cctrl" ]; then
  exec cctrl
fi
cat <<MSG

The sandbox is up. cctrl is not part of this release yet, so here is a shell
bound to $host instead (exit leaves it; the sandbox keeps running):
  $line
Try:   mariadb -h$addr -P13306 -utungsten -psecret -e 'select @@hostname, @@server_id'
       $top/bin/sandbox status --dir $dir
Stop:  make clean   (or $top/bin/sandbox down --dir $dir)
MSG
if [ ! -t 0 ] || [ ! -t 1 ]; then
  exit 0
fi
rc=$(mktemp)
trap 'rm -f "$rc"' EXIT
cat >"$rc" <<RC
[ -f ~/.bashrc ] && . ~/.bashrc
export PATH="$top/bin:\$PATH"
$line
PS1='[sandbox $host] \w \$ '
RC
bash --rcfile "$rc" -i || true
