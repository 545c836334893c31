#!/usr/bin/env bash
# The system packages the test suite runs against, on a fresh Debian/Ubuntu machine: ffmpeg (ssim/psnr,
# x264/x265/vpx/aom), prometheus/promtool. The Python side lives in the project's .venv (see Makefile).
set -euo pipefail

need_apt=()
command -v ffmpeg >/dev/null || need_apt+=(ffmpeg)
command -v promtool >/dev/null || need_apt+=(prometheus)
if ((${#need_apt[@]})); then
    sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
