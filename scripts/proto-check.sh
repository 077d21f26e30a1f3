#!/usr/bin/env bash
# Regenerates the gRPC types into a temporary folder and fails on any difference from the
# committed proto/generated (like grpc-node's validate-golden).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash scripts/proto-gen.sh "$tmp/generated" >/dev/null
if ! diff -ru proto/generated "$tmp/generated"; then
  echo "proto:check: proto/generated is stale; run npm run proto:gen and commit the result" >&2
  exit 1
fi
echo "proto:check: generated types match proto/"
