#!/usr/bin/env bash
# genproto.sh: regenerates rpc/gen from rpc/proto/*.proto with Debian's
# protoc and pinned Go generators (installed into ./bin/tools).
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
protos=(rpc/proto/*.proto)
if [ ${#protos[@]} -eq 0 ]; then
  echo "genproto: no .proto files under rpc/proto; nothing to generate"
  exit 0
fi
if ! command -v protoc >/dev/null; then
  echo "genproto: installing Debian's protobuf-compiler"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get install -y -qq protobuf-compiler >/dev/null
fi
tools="$PWD/bin/tools"
mkdir -p "$tools"
GOBIN="$tools" go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
GOBIN="$tools" go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
# Output goes where each file's go_package says (rpc/gen/<name>pb/).
module=$(go list -m)
PATH="$tools:$PATH" protoc -I rpc/proto \
  --go_out=. --go_opt=module="$module" \
  --go-grpc_out=. --go-grpc_opt=module="$module" "${protos[@]}"
echo "genproto: generated rpc/gen from ${#protos[@]} file(s) with $(protoc --version)"
