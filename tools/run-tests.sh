#!/usr/bin/env bash
# tools/run-tests.sh - the whole check, as CI runs it (.ci/run calls this).
#
#   tools/run-tests.sh              install, lint, config sample check, docs,
#                                   start servers, unit + functional tests
#   tools/run-tests.sh --no-apt     skip apt in tools/install.sh (dev box)
#   tools/run-tests.sh --no-install skip tools/install.sh entirely
#   tools/run-tests.sh --unit-only  no servers, no functional tests
#   tools/run-tests.sh --no-faults  skip the fault suite (tox -e faults)
#   tools/run-tests.sh --no-cluster skip the 3-node broker cluster tier
#                                   (tox -e cluster, ~10 min)
#   tools/run-tests.sh --no-docs    skip the documentation builds
#   tools/run-tests.sh --docs-only  install, then only the documentation builds
#   tools/run-tests.sh [...] -- ARGS   extra pytest arguments (both runs)
#
# Steps: tools/install.sh; ruff check; the mypy ratchet (no area of
# telemeter/ may have more mypy errors than tools/mypy-ratchet.json,
# tools/mypy_ratchet.py); etc/telemeter/telemeter.conf.sample
# must equal a fresh oslo-config-generator run; the Sphinx builds of doc/
# and releasenotes/ with warnings as errors (doc/requirements.txt is
# installed into the venv when missing); tools/services.sh up (all
# four servers, on free loopback ports, state in a private directory);
# export their TELEMETER_TEST_*_URL; pytest tests/unit; pytest
# tests/functional; pytest tests/functional/faults -m 'not faults_slow'
# (the fault suite of issue 12, its table in var/faults-report.json);
# pytest tests/functional/cluster before it (issue 15: its fixture starts
# a 3-node RabbitMQ cluster on free ports; ~10 min).
# The servers are always stopped again (trap), and any
# failed step - including pytest finding no test (exit code 5) - makes the
# script exit non-zero.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
VENV=${TELEMETER_VENV:-$REPO/.venv}

INSTALL=1
APT=1
FUNCTIONAL=1
FAULTS=1
CLUSTER=1
DOCS=1
DOCS_ONLY=0
PYTEST_ARGS=()
FAILED=()
T_START=$(date +%s%N)
SERVICES_UP=0
# Every server the functional tests use (tools/services.sh names).
SERVICES=(rabbitmq postgresql mariadb redis snmpd mongodb gnocchi)

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

banner() { echo; echo "==> [run-tests] $*"; }

since() {
    awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'
}

die() {
    echo "run-tests.sh: ERROR: $*" >&2
    exit 1
}

# First port >= $1 where the port and every port at the offsets $2... are
# free on 127.0.0.1, so a run on a shared dev box does not collide with
# servers that someone else started.  CI machines get the defaults.
free_port() {
    local base=$1 p off busy
    shift
    for ((p = base; p < base + 200; p++)); do
        busy=0
        for off in 0 "$@"; do
            if (exec 3<>"/dev/tcp/127.0.0.1/$((p + off))") 2>/dev/null; then
                busy=1
                break
            fi
        done
        [ "$busy" = 1 ] || { echo "$p"; return 0; }
    done
    die "no free port near $base on 127.0.0.1"
}

stop_services() {
    if [ "$SERVICES_UP" = 1 ]; then
        banner "stopping servers"
        bash tools/services.sh down "${SERVICES[@]}" \
            || echo "run-tests.sh: warning:" \
            "tools/services.sh down failed; check $TELEMETER_SERVICES_DIR" >&2
        SERVICES_UP=0
    fi
    if [ -n "${TELEMETER_SERVICES_DIR:-}" ]; then
        rmdir "$TELEMETER_SERVICES_DIR" 2>/dev/null || true
    fi
}

on_exit() {
    local rc=$?
    stop_services
    exit "$rc"
}

start_services() {
    # A private state directory: `down` in our trap can only ever stop the
    # servers this run started.
    TELEMETER_SERVICES_DIR=$(mktemp -d /tmp/telemeter-run.XXXXXX)
    chmod 755 "$TELEMETER_SERVICES_DIR"   # the postgres/mysql users enter it
    # RabbitMQ also binds PORT+10000 (epmd), +20000 (distribution) and
    # +30000..30010 (rabbitmqctl).
    TELEMETER_RABBIT_PORT=$(free_port "${TELEMETER_RABBIT_PORT:-5673}" \
        10000 20000 30000 30001 30002)
    TELEMETER_PG_PORT=$(free_port "${TELEMETER_PG_PORT:-55432}")
    TELEMETER_MYSQL_PORT=$(free_port "${TELEMETER_MYSQL_PORT:-53306}")
    TELEMETER_REDIS_PORT=$(free_port "${TELEMETER_REDIS_PORT:-56379}")
    TELEMETER_MONGODB_PORT=$(free_port "${TELEMETER_MONGODB_PORT:-27117}")
    # Gnocchi's API, and its private PostgreSQL on PORT+1.
    TELEMETER_GNOCCHI_PORT=$(free_port "${TELEMETER_GNOCCHI_PORT:-8141}" 1)
    # snmpd listens on UDP, which the TCP probe of free_port cannot test;
    # its default port is only used by this project's scripts.
    export TELEMETER_SERVICES_DIR TELEMETER_RABBIT_PORT TELEMETER_PG_PORT \
        TELEMETER_MYSQL_PORT TELEMETER_REDIS_PORT TELEMETER_MONGODB_PORT \
        TELEMETER_GNOCCHI_PORT

    banner "tools/services.sh up ${SERVICES[*]}"
    local t0
    t0=$(date +%s%N)
    SERVICES_UP=1
    bash tools/services.sh up "${SERVICES[@]}" \
        || die "servers did not start (messages above)"
    echo "    servers up in $(since "$t0") s"
    # The fixtures in tests/functional use these instead of starting their own.
    eval "$(bash tools/services.sh env --export "${SERVICES[@]}")"
    env | grep '^TELEMETER_TEST_' | sort | sed 's/^/    /'
}

# Run pytest with "$@"; record a failure.  Exit code 5 means no test was
# collected, which must not pass as success.
run_pytest() {
    local label=$1 rc=0 t0
    shift
    banner "pytest $label"
    t0=$(date +%s%N)
    "$VENV/bin/python" -m pytest "$@" "${PYTEST_ARGS[@]}" || rc=$?
    echo "    pytest $label: exit code $rc in $(since "$t0") s"
    case "$rc" in
        0) ;;
        5) echo "run-tests.sh: pytest $label collected no tests" >&2
           FAILED+=("pytest $label (no tests collected)") ;;
        *) FAILED+=("pytest $label (exit code $rc)") ;;
    esac
}

check_config_sample() {
    local sample=etc/telemeter/telemeter.conf.sample
    local genconf=etc/telemeter/telemeter-config-generator.conf tmp rc=0
    banner "config sample is up to date ($sample)"
    tmp=$(mktemp /tmp/telemeter-conf-sample.XXXXXX)
    if ! "$VENV/bin/oslo-config-generator" --config-file "$genconf" \
            --output-file "$tmp"; then
        rm -f "$tmp"
        FAILED+=("oslo-config-generator failed")
        return
    fi
    if [ ! -f "$sample" ]; then
        echo "run-tests.sh: $sample is missing: run \`tox -e genconfig\`" \
             "(or oslo-config-generator --config-file $genconf) and commit it" >&2
        FAILED+=("config sample missing")
    elif ! diff -u "$sample" "$tmp"; then
        echo "run-tests.sh: $sample is out of date (diff above: - committed," \
             "+ generated): run \`tox -e genconfig\` and commit the result" >&2
        FAILED+=("config sample out of date")
        rc=1
    else
        echo "    up to date"
    fi
    rm -f "$tmp"
    return "$rc"
}

# Build the documentation and the release notes as `tox -e docs` and
# `tox -e releasenotes` do: every Sphinx warning is an error.  The option
# reference imports telemeter through its entry points, which the venv has
# (tools/install.sh installs the project in editable mode).  -E re-reads
# every page, so an earlier build in doc/build cannot hide a warning.
build_docs() {
    local t0 rc=0
    banner "docs: sphinx-build doc/source and releasenotes/source (-W)"
    t0=$(date +%s%N)
    if ! "$VENV/bin/python" -c 'import sphinx, reno' 2>/dev/null; then
        echo "    installing doc/requirements.txt into $VENV"
        if ! "$VENV/bin/python" -m pip install --quiet \
                -r doc/requirements.txt; then
            FAILED+=("docs: pip install -r doc/requirements.txt")
            return
        fi
    fi
    "$VENV/bin/python" -m sphinx -E -W --keep-going -q -b html \
        doc/source doc/build/html || rc=$?
    if [ "$rc" != 0 ]; then
        FAILED+=("docs: sphinx-build doc/source (exit code $rc)")
    fi
    rc=0
    "$VENV/bin/python" -m sphinx -E -W -q -b html \
        releasenotes/source releasenotes/build/html || rc=$?
    if [ "$rc" != 0 ]; then
        FAILED+=("docs: sphinx-build releasenotes/source (exit code $rc)")
    fi
    echo "    docs built in $(since "$t0") s" \
         "(doc/build/html, releasenotes/build/html)"
}

main() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --no-install) INSTALL=0 ;;
            --no-apt) APT=0 ;;
            --unit-only) FUNCTIONAL=0 ;;
            --no-faults) FAULTS=0 ;;
            --cluster) CLUSTER=1 ;;
            --no-cluster) CLUSTER=0 ;;
            --no-docs) DOCS=0 ;;
            --docs-only) DOCS_ONLY=1 ;;
            -h|--help) usage; exit 0 ;;
            --) shift; PYTEST_ARGS=("$@"); break ;;
            *) usage >&2; die "unknown option: $1" ;;
        esac
        shift
    done
    trap on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    echo "==> [run-tests] repo $REPO at $(git rev-parse --short HEAD 2>/dev/null || echo '?')" \
         "CI=${CI:-}"
    if [ "$INSTALL" = 1 ]; then
        banner "tools/install.sh"
        if [ "$APT" = 1 ]; then
            bash tools/install.sh
        else
            bash tools/install.sh --no-apt
        fi
    fi
    [ -x "$VENV/bin/python" ] || die "no venv at $VENV: run tools/install.sh"

    if [ "$DOCS_ONLY" = 1 ]; then
        build_docs
        FUNCTIONAL=0
    else
        banner "ruff check telemeter tests tools"
        "$VENV/bin/ruff" check telemeter tests tools || FAILED+=("ruff check")

        banner "mypy ratchet (tools/mypy_ratchet.py, baseline tools/mypy-ratchet.json)"
        "$VENV/bin/python" tools/mypy_ratchet.py || FAILED+=("mypy ratchet")

        check_config_sample || true

        if [ "$DOCS" = 1 ]; then
            build_docs
        fi

        run_pytest unit tests/unit
    fi

    if [ "$FUNCTIONAL" = 1 ]; then
        start_services
        run_pytest functional tests/functional
        if [ "$CLUSTER" = 1 ]; then
            run_pytest cluster tests/functional/cluster
        fi
        if [ "$FAULTS" = 1 ]; then
            # Last: it stops and starts the broker and PostgreSQL.
            mkdir -p var
            export TELEMETER_FAULTS_REPORT=$REPO/var/faults-report.json
            run_pytest faults tests/functional/faults -m 'not faults_slow'
        fi
        stop_services
    fi

    echo
    if [ "${#FAILED[@]}" -gt 0 ]; then
        echo "==> [run-tests] FAILED after $(since "$T_START") s:"
        printf '    - %s\n' "${FAILED[@]}"
        exit 1
    fi
    echo "==> [run-tests] all checks passed in $(since "$T_START") s"
}

main "$@"
