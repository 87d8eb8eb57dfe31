#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test DenseCL for Swift. Idempotent: a machine that
# already has everything is left untouched (no apt-get update, no network).
set -euo pipefail

packages=(libopenblas-dev libzmq3-dev libturbojpeg0-dev libpng-dev pkg-config)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
    echo "bootstrap: installing ${missing[*]}"
    sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo_cmd apt-get update -qq
    $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "bootstrap: system libraries present (${packages[*]})"
fi

if ! command -v swift >/dev/null 2>&1; then
    echo "bootstrap: no 'swift' on PATH; install a Swift 6 toolchain first (https://www.swift.org/install)" >&2
    exit 1
fi
