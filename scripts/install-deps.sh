#!/usr/bin/env bash
# Installs the Debian packages of scripts/packages.txt that are missing, then
# the npm tools the project checks itself with (the OpenAPI linter) into
# .tools/ of the work tree (ignored by git). Root runs apt-get directly;
# anyone else goes through sudo.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
mapfile -t wanted < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$here/packages.txt")
missing=()
for pkg in "${wanted[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$pkg")
done

apt_install() {
    echo "dexter: installing missing Debian packages: $*" >&2
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "dexter: need root or sudo to install: $*" >&2; exit 1; }
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    # policy-rc.d keeps the redis-server package from starting a system-wide
    # Redis on port 6379: Dexter starts its own.
    local policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
        $sudo chmod +x /usr/sbin/policy-rc.d
        policy=yes
    fi
    $sudo apt-get install -y -qq --no-install-recommends "$@" >&2
    [ -z "$policy" ] || $sudo rm -f /usr/sbin/policy-rc.d
}

[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

# The OpenAPI linter (make lint-openapi): @redocly/cli at one version, with
# Node.js (20.19 or later) and npm. DEXTER_DEPS=build, for an image that
# only builds and runs Dexter (the Dockerfile), stops before it.
[ "${DEXTER_DEPS:-}" != build ] || exit 0
# NodeSource's nodejs carries npm; Debian's has it in a package of its own.
command -v node >/dev/null || apt_install nodejs
command -v npm >/dev/null || apt_install npm
REDOCLY_VERSION=2.77.0
tools="$root/.tools"
have=$("$tools/node_modules/.bin/redocly" --version 2>/dev/null || true)
if [ "$have" != "$REDOCLY_VERSION" ]; then
    echo "dexter: installing @redocly/cli@$REDOCLY_VERSION into $tools" >&2
    mkdir -p "$tools"
    npm install --prefix "$tools" --no-audit --no-fund --save-exact --loglevel=error \
        "@redocly/cli@$REDOCLY_VERSION" >&2
fi
