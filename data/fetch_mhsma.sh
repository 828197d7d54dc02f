#!/usr/bin/env bash
# Puts the MHSMA dataset (64x64 splits and labels) into data/mhsma and checks every file
# against data/mhsma.sha256. Source: ../shared/data/mhsma when present, else a shallow
# clone of the public MHSMA repository. The data is never committed (see data/LICENSE.md).
# Usage: data/fetch_mhsma.sh [TARGET_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
target=${1:-$here/mhsma}
shared="$here/../../shared/data/mhsma"
mkdir -p "$target"

if (cd "$target" && sha256sum --quiet -c "$here/mhsma.sha256" >/dev/null 2>&1); then
  echo "MHSMA already in place: $target"
  exit 0
fi
if [ -d "$shared" ]; then
  echo "copying MHSMA from $shared"
  cp "$shared"/x_64_*.npy "$shared"/y_*.npy "$target"/
else
  echo "cloning the public MHSMA repository"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  git clone --depth 1 https://github.com/soroushj/mhsma-dataset.git "$tmp/mhsma-dataset"
  cp "$tmp"/mhsma-dataset/mhsma/x_64_*.npy "$tmp"/mhsma-dataset/mhsma/y_*.npy "$target"/
fi
(cd "$target" && sha256sum --quiet -c "$here/mhsma.sha256") || { echo "MHSMA files do not match data/mhsma.sha256" >&2; exit 1; }
echo "MHSMA ready: $target"
