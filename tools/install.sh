#!/usr/bin/env bash
# tools/install.sh - set up a machine to develop and test telemeter.
#
#   tools/install.sh            # apt packages (as root) + .venv + pip install
#   tools/install.sh --no-apt   # skip apt (dev box that has the packages, or
#                               # only runs unit tests); still reports what
#                               # is missing
#   tools/install.sh --force    # re-run pip even if nothing changed
#
# Also creates Gnocchi's own venv for the functional tests
# (tools/gnocchi/service.sh install: TELEMETER_GNOCCHI_VENV, default
# <repo>/.gnocchi-venv; skipped when up to date).
#
# Idempotent: apt runs only when a package is missing (then `apt-get update`
# once, then one `apt-get install`), the venv is created only if absent, and
# pip is skipped when the packaging files have not changed since the last
# successful install (stamp file in the venv).
#
# Environment:
#   PYTHON            interpreter used to create the venv (default: python3)
#   TELEMETER_VENV    venv directory (default: <repo>/.venv)
#   TELEMETER_CEILOMETERCLIENT_VENV  the ceilometer CLI's venv (default:
#                     <repo>/.venv-ceilometerclient)
#   TELEMETER_KEYSTONE_VENV  Keystone's venv for the API auth tests
#                     (default: <repo>/.venv-keystone)
#
# Measured on the Debian 12 dev machine (2 cores, warm apt cache in
# /var/cache/apt/archives; postgresql-15, gcc, python3-dev, pkg-config and git
# already installed, the other 6 packages not):
#   full run with a new venv:  54.0 s = apt-get update 1.0 s + apt-get install
#     19.2 s (6 packages -> 52 new .debs + 4 upgrades, 273 MB, 7 MB fetched)
#     + venv 4.7 s + pip upgrade 2.3 s + pip install -e 26.4 s
#   second run (nothing missing, packaging files unchanged):  0.2 s
#   --no-apt with an existing venv and no stamp yet (pip only):  6.3 s
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${TELEMETER_VENV:-$REPO/.venv}
PYTHON=${PYTHON:-python3}
CLIENT_VENV=${TELEMETER_CEILOMETERCLIENT_VENV:-$REPO/.venv-ceilometerclient}
KEYSTONE_VENV=${TELEMETER_KEYSTONE_VENV:-$REPO/.venv-keystone}

# Debian packages the test suite needs now or soon:
#   rabbitmq-server   AMQP broker for oslo.messaging functional tests
#   postgresql-15     SQL storage backend tests (psycopg)
#   mariadb-server    SQL storage backend tests (PyMySQL); brings mariadb-admin
#   redis-server      tooz coordination backend; brings redis-tools
#   snmpd snmp        SNMP hardware pollster tests (agent + snmpget)
#   libvirt-dev pkg-config gcc   build libvirt-python from its sdist (the
#                     test:///default driver lives in libvirt0, no daemon)
#   python3-dev       headers for any sdist build against Debian's python
#   git               pbr derives the package version from git metadata
#   openssl           throwaway CA/server/client certificates for the
#                     HTTPS publisher tests
#   chromium          headless browser loading telemeter-api's operator page
APT_PACKAGES=(
    rabbitmq-server postgresql-15 mariadb-server redis-server
    snmpd snmp libvirt-dev pkg-config gcc python3-dev git openssl chromium
)

DO_APT=1
FORCE=0
STEP=0
T_START=$(date +%s%N)

usage() {
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# Progress lines go to stdout so CI logs show where time is spent.
step() {
    STEP=$((STEP + 1))
    echo "==> [install $STEP] $*"
}

# Print seconds elapsed since the nanosecond timestamp $1.
since() {
    local now
    now=$(date +%s%N)
    awk -v a="$1" -v b="$now" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'
}

die() {
    echo "install.sh: ERROR: $*" >&2
    exit 1
}

# Echo the packages from APT_PACKAGES that dpkg does not list as installed.
missing_packages() {
    local pkg status
    for pkg in "${APT_PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null \
                 || true)
        [ "$status" = installed ] || echo "$pkg"
    done
}

# Run a command as root: directly, or through passwordless sudo.
as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        die "installing Debian packages needs root: re-run as root (or with" \
            "passwordless sudo), or install them yourself and use --no-apt"
    fi
}

install_apt() {
    local -a missing
    mapfile -t missing < <(missing_packages)
    if [ "${#missing[@]}" -eq 0 ]; then
        step "apt: all ${#APT_PACKAGES[@]} packages already installed"
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 \
        || die "apt-get not found: this script supports Debian 12; install" \
               "${missing[*]} by other means and use --no-apt"

    # Server packages must not start daemons on the default ports: the
    # Debian image ships /usr/sbin/policy-rc.d (exit 101) for that.  If a
    # machine lacks it, provide one for the duration of the install only.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [ ! -e "$policy" ]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
        own_policy=1
        # shellcheck disable=SC2064  # expand now: remove our file on exit
        trap "as_root rm -f $policy" EXIT
    fi

    local t0
    step "apt-get update (missing: ${missing[*]})"
    t0=$(date +%s%N)
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    echo "    apt-get update took $(since "$t0") s"

    step "apt-get install ${missing[*]}"
    t0=$(date +%s%N)
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}"
    echo "    apt-get install took $(since "$t0") s"

    if [ "$own_policy" = 1 ]; then
        as_root rm -f "$policy"
        trap - EXIT
    fi

    mapfile -t missing < <(missing_packages)
    [ "${#missing[@]}" -eq 0 ] \
        || die "still not installed after apt-get: ${missing[*]}"
}

report_missing_without_apt() {
    local -a missing
    mapfile -t missing < <(missing_packages)
    if [ "${#missing[@]}" -eq 0 ]; then
        step "apt skipped (--no-apt); all packages present"
    else
        step "apt skipped (--no-apt); NOT installed: ${missing[*]}"
        echo "    functional tests that need them will fail; install with:"
        echo "    apt-get install -y --no-install-recommends ${missing[*]}"
    fi
}

create_venv() {
    local t0
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys' \
            2>/dev/null; then
        step "venv $VENV exists ($("$VENV/bin/python" --version 2>&1))"
        return 0
    fi
    command -v "$PYTHON" >/dev/null 2>&1 \
        || die "$PYTHON not found on PATH: install Python >= 3.11 or set PYTHON"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$PYTHON is $("$PYTHON" --version 2>&1); telemeter needs" \
               ">= 3.11 (set PYTHON=/path/to/python3.11)"
    step "create venv $VENV with $(command -v "$PYTHON") ($("$PYTHON" --version 2>&1))"
    t0=$(date +%s%N)
    # A half-created venv (interrupted run) would fail the check above.
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" \
        || die "python -m venv failed: on Debian's python install python3-venv"
    echo "    venv took $(since "$t0") s"
}

# Hash of everything that decides what pip installs; equal hash => skip pip.
deps_hash() {
    (cd "$REPO" && cat setup.cfg setup.py pyproject.toml requirements.txt \
        test-requirements.txt 2>/dev/null) | sha256sum | cut -d' ' -f1
}

pip_install() {
    local stamp=$VENV/.telemeter-install-stamp hash t0
    hash=$(deps_hash)
    if [ "$FORCE" = 0 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ] \
            && "$VENV/bin/python" -c 'import telemeter' 2>/dev/null; then
        step "pip: packaging files unchanged since last install; skipped" \
             "(--force to re-run)"
        return 0
    fi
    step "pip install -U pip"
    t0=$(date +%s%N)
    "$VENV/bin/python" -m pip install -q --progress-bar off --upgrade pip
    echo "    took $(since "$t0") s"

    step "pip install -e '.[test,postgresql,mysql]'"
    t0=$(date +%s%N)
    rm -f "$stamp"
    (cd "$REPO" && "$VENV/bin/python" -m pip install -q --progress-bar off \
        -e '.[test,postgresql,mysql]')
    echo "    took $(since "$t0") s"
    echo "$hash" > "$stamp"
}

# python-ceilometerclient 2.9.0, the real client the API tests drive
# (tests/functional/test_api_cli.py), in a venv of its own: it pins old
# dependencies that must not meet the project's.
install_ceilometerclient() {
    local t0
    if [ -x "$CLIENT_VENV/bin/ceilometer" ]; then
        step "python-ceilometerclient present in $CLIENT_VENV"
        return 0
    fi
    step "venv $CLIENT_VENV with python-ceilometerclient==2.9.0"
    t0=$(date +%s%N)
    rm -rf "$CLIENT_VENV"
    "$PYTHON" -m venv "$CLIENT_VENV"
    "$CLIENT_VENV/bin/python" -m pip install -q --progress-bar off \
        python-ceilometerclient==2.9.0
    echo "    took $(since "$t0") s"
}

# Keystone from PyPI (and gunicorn to serve it), in a venv of its own: the
# API's auth tests (tests/functional/test_api_auth.py) run a real one.
install_keystone() {
    local t0
    if [ -x "$KEYSTONE_VENV/bin/keystone-manage" ] \
            && [ -x "$KEYSTONE_VENV/bin/gunicorn" ]; then
        step "keystone present in $KEYSTONE_VENV"
        return 0
    fi
    step "venv $KEYSTONE_VENV with keystone and gunicorn"
    t0=$(date +%s%N)
    rm -rf "$KEYSTONE_VENV"
    "$PYTHON" -m venv "$KEYSTONE_VENV"
    "$KEYSTONE_VENV/bin/python" -m pip install -q --progress-bar off \
        'keystone>=26.0.0' gunicorn
    echo "    took $(since "$t0") s"
}

main() {
    local arg
    for arg in "$@"; do
        case "$arg" in
            --no-apt) DO_APT=0 ;;
            --force) FORCE=1 ;;
            -h|--help) usage; exit 0 ;;
            *) usage >&2; die "unknown option: $arg" ;;
        esac
    done

    echo "==> telemeter install: repo $REPO, venv $VENV"
    if [ "$DO_APT" = 1 ]; then
        install_apt
    else
        report_missing_without_apt
    fi
    create_venv
    pip_install
    # Gnocchi (a test server) in a venv of its own: its pins are not ours.
    step "Gnocchi test server venv (tools/gnocchi/service.sh install)"
    bash "$REPO/tools/gnocchi/service.sh" install
    install_ceilometerclient
    install_keystone
    echo "==> install done in $(since "$T_START") s;" \
         "activate with: . $VENV/bin/activate"
}

main "$@"
