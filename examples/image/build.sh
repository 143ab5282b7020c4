#!/usr/bin/env bash
# Builds the static cl-maint binary and the FROM scratch image of it.
#   bash examples/image/build.sh [TAG]      (default tag: cl-maint:<version>)
set -euo pipefail
cd "$(dirname "$0")/../.."
triple=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$triple" --bin cl-maint
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
tag=${1:-cl-maint:$version}
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "target/$triple/release/cl-maint" examples/image/Dockerfile "$context/"
docker build -t "$tag" "$context"
echo "built $tag ($(du -h "$context/cl-maint" | cut -f1) binary)"
