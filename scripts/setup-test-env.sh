#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine: the real third-party tools the
# tests run against (ffmpeg, prometheus/promtool, kubectl's kustomize) and the Python extras.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ffmpeg >/dev/null || need_apt+=(ffmpeg)
command -v promtool >/dev/null || need_apt+=(prometheus)
if ((${#need_apt[@]})); then
    sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# The CPU torch wheel lies in /opt/wheels on our machines; anywhere else pip finds it on its index.
find_links=()
[ -d /opt/wheels ] && find_links=(--find-links /opt/wheels)
python3 -m pip install -q "${find_links[@]}" -e '.[train,dev]'
