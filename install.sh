#!/usr/bin/env bash
# Install what this project needs on a Debian/Ubuntu machine: system packages (ffmpeg; chromium with
# --dev for the browser test), then the Python packages. Works as root (no sudo needed), as a user with
# sudo, and otherwise stops with one line saying what to ask an administrator to run.
#
#   bash install.sh            # ffmpeg + requirements.txt (separate, train, evaluate)
#   bash install.sh --dev      # + chromium and requirements-dev.txt (the test suite)
set -euo pipefail
cd "$(dirname "$0")"

requirements=requirements.txt
apt_packages=()
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || apt_packages+=(ffmpeg)
if [ "${1:-}" = "--dev" ]; then
  requirements=requirements-dev.txt
  command -v chromium >/dev/null || command -v chromium-browser >/dev/null || apt_packages+=(chromium)
fi

if [ ${#apt_packages[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null || { command -v sudo >/dev/null && [ -t 0 ]; }; then
    as_root=(sudo)
  else
    echo "install.sh: ${apt_packages[*]} missing and this user cannot install system packages: ask an administrator to run 'apt-get install -y ${apt_packages[*]}' (or use 'conda install -c conda-forge ffmpeg'), then rerun" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null; then
    echo "install.sh: ${apt_packages[*]} missing and there is no apt-get here: install ${apt_packages[*]} with this system's package manager (macOS: brew install ffmpeg), then rerun" >&2
    exit 1
  fi
  echo "install.sh: installing ${apt_packages[*]} with apt-get" >&2
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -r "$requirements"
echo "install.sh: done (system: ${apt_packages[*]:-nothing missing}; Python: $requirements)" >&2
