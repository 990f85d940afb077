#!/usr/bin/env bash
# Installs the system toolchains dwscodegen needs (Debian/Ubuntu), only those that are missing.
# As root it runs apt-get; otherwise it says what to install and carries on (Cortex-M tests then skip).
set -euo pipefail

need=()
command -v gcc >/dev/null || need+=(gcc)
command -v make >/dev/null || need+=(make)
command -v arm-none-eabi-gcc >/dev/null || need+=(gcc-arm-none-eabi)
[ -e /usr/lib/arm-none-eabi/newlib/librdimon.a ] || [ -n "$(find /usr/lib/arm-none-eabi -name librdimon.a 2>/dev/null | head -n 1)" ] \
    || need+=(libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null || need+=(qemu-system-arm)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)

if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "dwscodegen: missing system packages: ${need[*]}" >&2
    echo "  install them with: sudo apt-get install ${need[*]}  (Cortex-M targets are unavailable until then)" >&2
    exit 0
fi
echo "dwscodegen: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
