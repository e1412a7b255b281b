#!/usr/bin/env bash
# tools/install-production.sh - install telemeter for production: a venv
# under /opt/telemeter, the telemeter system user and its directories,
# /etc/telemeter/ and the hardened systemd units.
#
#   tools/install-production.sh [options]
#
#   --root DIR           install into DIR instead of / (image building,
#                        tests); nothing outside DIR is touched
#   --prefix DIR         venv location (default /opt/telemeter)
#   --wheel FILE         install this wheel instead of building one from
#                        the checkout (its dependencies come from the index)
#   --extras LIST        extras to install, e.g. postgresql,mysql
#   --python PYTHON      interpreter for the venv (default python3, >= 3.11)
#   --transport-url URL  [DEFAULT] transport_url of a new telemeter.conf
#   --database-url URL   [database] connection of a new telemeter.conf
#                        (default sqlite:////var/lib/telemeter/telemeter.db)
#   -h, --help
#
# Files an operator may have edited are never overwritten: an existing
# /etc/telemeter/<file> is kept (the packaged one is left next to it as
# <file>.dist-new when they differ). The venv, the systemd units and the
# sysusers.d/tmpfiles.d entries are the script's own and are replaced.
# Nothing is enabled or started; the script ends with the next steps.
# Guide: doc/source/install/production.rst.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=/
PREFIX=/opt/telemeter
WHEEL=
EXTRAS=
PYTHON=${PYTHON:-python3}
TRANSPORT_URL='rabbit://telemeter:CHANGE_ME@localhost:5672/'
DATABASE_URL='sqlite:////var/lib/telemeter/telemeter.db'
USER_NAME=telemeter
# What goes into /etc/telemeter/ from the installed package's data files.
CONFIG_FILES=(pipeline.yaml event_pipeline.yaml event_definitions.yaml
              polling.yaml)

say() { echo "==> [install-production] $*"; }
die() { echo "install-production.sh: ERROR: $*" >&2; exit 1; }
usage() { sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

parse_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --root) ROOT=${2:?--root needs a directory}; shift ;;
            --prefix) PREFIX=${2:?--prefix needs a directory}; shift ;;
            --wheel) WHEEL=${2:?--wheel needs a file}; shift ;;
            --extras) EXTRAS=${2:?--extras needs a list}; shift ;;
            --python) PYTHON=${2:?--python needs an interpreter}; shift ;;
            --transport-url) TRANSPORT_URL=${2:?}; shift ;;
            --database-url) DATABASE_URL=${2:?}; shift ;;
            -h|--help) usage; exit 0 ;;
            *) usage >&2; die "unknown option: $1" ;;
        esac
        shift
    done
    case "$PREFIX" in /*) ;; *) die "--prefix must be absolute: $PREFIX" ;; esac
    mkdir -p "$ROOT"
    ROOT=$(cd "$ROOT" && pwd)
    # $R is prepended to every target path: empty for the real root.
    if [ "$ROOT" = / ]; then R=; else R=$ROOT; fi
    if [ -n "$WHEEL" ]; then
        [ -f "$WHEEL" ] || die "no such wheel: $WHEEL"
        WHEEL=$(cd "$(dirname "$WHEEL")" && pwd)/$(basename "$WHEEL")
    fi
}

# --- the venv --------------------------------------------------------------

build_wheel() {
    local out=$1
    say "building a wheel from $REPO"
    # pbr takes the version from git; --no-deps: only telemeter itself.
    "$R$PREFIX/bin/python" -m pip wheel -q --no-deps --progress-bar off \
        -w "$out" "$REPO" > "$out/build.log" 2>&1 \
        || { cat "$out/build.log" >&2; die "building the wheel failed"; }
    WHEEL=$(ls "$out"/telemeter-*.whl)
}

install_venv() {
    local venv=$R$PREFIX tmp spec
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$PYTHON is not Python >= 3.11 (use --python)"
    if [ ! -x "$venv/bin/python" ]; then
        say "creating the venv $PREFIX"
        "$PYTHON" -m venv "$venv" \
            || die "python -m venv failed (Debian: apt-get install python3-venv)"
    else
        say "upgrading the venv $PREFIX"
    fi
    "$venv/bin/python" -m pip install -q --progress-bar off --upgrade pip
    tmp=$(mktemp -d)
    # shellcheck disable=SC2064  # expand now
    trap "rm -rf '$tmp'" EXIT
    [ -n "$WHEEL" ] || build_wheel "$tmp"
    spec=$WHEEL
    [ -z "$EXTRAS" ] || spec="telemeter[$EXTRAS] @ file://$WHEEL"
    say "installing $(basename "$WHEEL")${EXTRAS:+ with [$EXTRAS]}"
    "$venv/bin/python" -m pip install -q --progress-bar off "$spec"
    rm -rf "$tmp"
    trap - EXIT
    if [ -n "$R" ]; then
        # The venv will run as $PREFIX: scripts must not name the staging
        # directory in their #! line (as a package's DESTDIR install).
        { grep -rlI --null -- "$venv" "$venv/bin" "$venv/pyvenv.cfg" \
              || true; } | xargs -0 -r sed -i "s|$venv|$PREFIX|g"
    fi
    install -d "$venv/share/doc/telemeter" "$venv/share/telemeter/systemd"
    install -m 0644 "$REPO/doc/source/install/production.rst" \
        "$venv/share/doc/telemeter/production.rst"
}

# --- user and directories --------------------------------------------------

install_sysusers_tmpfiles() {
    install -d "$R/etc" "$R/usr/lib/sysusers.d" "$R/usr/lib/tmpfiles.d"
    install -m 0644 "$REPO/etc/sysusers.d/telemeter.conf" \
        "$R/usr/lib/sysusers.d/telemeter.conf"
    install -m 0644 "$REPO/etc/tmpfiles.d/telemeter.conf" \
        "$R/usr/lib/tmpfiles.d/telemeter.conf"
    if command -v systemd-sysusers >/dev/null 2>&1; then
        say "creating the $USER_NAME user (systemd-sysusers)"
        systemd-sysusers --root="$ROOT" "$R/usr/lib/sysusers.d/telemeter.conf"
    elif [ -z "$R" ]; then
        say "creating the $USER_NAME user (useradd: no systemd-sysusers)"
        getent passwd "$USER_NAME" >/dev/null || useradd --system \
            --user-group --home-dir /var/lib/telemeter --no-create-home \
            --shell /usr/sbin/nologin --comment 'telemeter telemetry daemons' \
            "$USER_NAME"
    else
        die "systemd-sysusers is needed to create the user under --root"
    fi
    if command -v systemd-tmpfiles >/dev/null 2>&1; then
        say "creating the directories (systemd-tmpfiles)"
        systemd-tmpfiles --root="$ROOT" --create \
            "$R/usr/lib/tmpfiles.d/telemeter.conf"
    else
        say "creating the directories (install -d: no systemd-tmpfiles)"
        install -d -m 0750 -o root -g "$USER_NAME" /etc/telemeter \
            /etc/telemeter/meters.d
        install -d -m 0750 -o "$USER_NAME" -g "$USER_NAME" \
            /var/lib/telemeter /var/log/telemeter
    fi
}

# Numeric gid of the telemeter group in the target root ('' if unknown).
target_gid() {
    awk -F: -v n="$USER_NAME" '$1 == n { print $3 }' "$R/etc/group" \
        2>/dev/null || true
}

# install_config SRC NAME: /etc/telemeter/NAME from SRC unless it exists.
install_config() {
    local src=$1 dest=$R/etc/telemeter/$2 gid
    gid=$(target_gid)
    if [ -e "$dest" ]; then
        if ! cmp -s "$src" "$dest"; then
            install -m 0640 "$src" "$dest.dist-new"
            say "kept /etc/telemeter/$2 (the packaged one: $2.dist-new)"
        fi
        return
    fi
    install -m 0640 "$src" "$dest"
    if [ -n "$gid" ] && [ "$(id -u)" = 0 ]; then
        chown "0:$gid" "$dest"
    fi
    say "installed /etc/telemeter/$2"
}

# The sample with the essentials set: broker, database, a random secret.
write_telemeter_conf() {
    local sample=$1 out=$2 secret
    secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    "$R$PREFIX/bin/python" - "$sample" "$out" "$TRANSPORT_URL" \
        "$DATABASE_URL" "$secret" <<'PYEOF'
import re
import sys

sample, out, transport_url, database_url, secret = sys.argv[1:]
wanted = {('DEFAULT', 'transport_url'): transport_url,
          ('database', 'connection'): database_url,
          ('publisher', 'telemetry_secret'): secret}
section, lines = None, []
for line in open(sample, encoding='utf-8').read().splitlines():
    header = re.match(r'^\[(.+)\]$', line)
    if header:
        section = header.group(1)
    match = re.match(r'^#(\w+) = ', line)
    if match and (section, match.group(1)) in wanted:
        value = wanted.pop((section, match.group(1)))
        lines.append(f'{match.group(1)} = {value}')
        continue
    lines.append(line)
if wanted:
    sys.exit(f'options not found in {sample}: {sorted(wanted)}')
header = ('# Written by tools/install-production.sh from telemeter.conf.sample:'
          '\n# set transport_url (broker) and [database] connection, keep the'
          '\n# generated telemetry_secret identical on every node.\n')
with open(out, 'w', encoding='utf-8') as f:
    f.write(header + '\n'.join(lines) + '\n')
PYEOF
}

install_etc() {
    local data=$R$PREFIX/etc/telemeter name tmp
    [ -d "$data" ] || die "$PREFIX/etc/telemeter missing from the install"
    # Created by tmpfiles (0750 root:telemeter); install -d would reset
    # the mode of an existing directory.
    [ -d "$R/etc/telemeter" ] || install -d -m 0750 "$R/etc/telemeter"
    for name in "${CONFIG_FILES[@]}"; do
        install_config "$data/$name" "$name"
    done
    tmp=$(mktemp)
    write_telemeter_conf "$data/telemeter.conf.sample" "$tmp"
    if [ -e "$R/etc/telemeter/telemeter.conf" ]; then
        say "kept /etc/telemeter/telemeter.conf"
    else
        install_config "$tmp" telemeter.conf
    fi
    rm -f "$tmp"
}

# --- systemd units ---------------------------------------------------------

install_units() {
    local unit dest=$R/etc/systemd/system share=$R$PREFIX/share/telemeter
    install -d "$dest"
    for unit in "$REPO"/etc/systemd/*.service "$REPO"/etc/systemd/*.timer; do
        sed "s|/opt/telemeter|$PREFIX|g" "$unit" \
            > "$dest/$(basename "$unit").tmp"
        chmod 0644 "$dest/$(basename "$unit").tmp"
        mv "$dest/$(basename "$unit").tmp" "$dest/$(basename "$unit")"
    done
    say "installed the units in /etc/systemd/system/"
    # Optional drop-ins (libvirt, IPMI): copied for the operator, not active.
    for unit in "$REPO"/etc/systemd/telemeter-polling.service.d/*.example; do
        sed "s|/opt/telemeter|$PREFIX|g" "$unit" \
            > "$share/systemd/$(basename "$unit" .example)"
    done
}

next_steps() {
    cat <<TXT

telemeter is installed in $PREFIX${R:+ (under $ROOT)}. Next:
  1. edit /etc/telemeter/telemeter.conf (transport_url, [database] connection)
  2. sudo -u $USER_NAME $PREFIX/bin/telemeter-dbsync --config-file /etc/telemeter/telemeter.conf
  3. systemctl daemon-reload
     systemctl enable --now telemeter-collector telemeter-agent-notification \\
         telemeter-polling telemeter-expirer.timer
  4. systemctl status telemeter-collector; systemd-analyze security telemeter-collector
libvirt / IPMI polling: drop-ins in $PREFIX/share/telemeter/systemd/.
TXT
}

main() {
    parse_args "$@"
    say "target root $ROOT, prefix $PREFIX"
    install_venv
    install_sysusers_tmpfiles
    install_etc
    install_units
    next_steps
}

main "$@"
