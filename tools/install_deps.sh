#!/usr/bin/env bash
# Every Debian 12 package morphokd needs to build, test and benchmark (run as root or via sudo).
# --list prints the list instead (.ci/run installs it itself). WITH_TORCH=1 adds PyTorch,
# used only to regenerate golden fixtures and for side-by-side benchmarks.
set -euo pipefail
packages=(build-essential cmake git file ca-certificates
          zlib1g-dev libeigen3-dev libdnnl-dev ocl-icd-opencl-dev libopencv-dev libboost-dev libboost-test-dev nlohmann-json3-dev libcli11-dev libfmt-dev
          libbenchmark-dev libopenmpi-dev openmpi-bin dataset-fashion-mnist)
[ "${WITH_TORCH:-0}" = 1 ] && packages+=(python3-torch python3-torchvision python3-numpy)
if [ "${1:-}" = --list ]; then
  echo "${packages[@]}"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}"
