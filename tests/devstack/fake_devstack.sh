#!/bin/bash
#
# tests/devstack/fake_devstack.sh - stand-ins for the DevStack functions
# and variables that devstack/settings and devstack/plugin.sh use, so that
# the plugin can be run on one machine without DevStack.
#
# Written for df_gmr's tests; they follow DevStack's documented behaviour:
#
# * iniset, iniget, ini_has_option, inidelete edit real INI files: keys
#   are found inside their section only, "iniset" appends a missing
#   section as a blank line plus "[section]" and puts a new key right
#   under the header as "key = value"; "-sudo" is accepted.
# * is_service_enabled, enable_service, disable_service work on
#   ENABLED_SERVICES and DISABLED_SERVICES (comma separated), with the
#   nova/neutron/cinder/glance catch-alls.
# * setup_develop, pip_install, run_process, stop_process, $SYSTEMCTL
#   append a line to $FAKE_DEVSTACK_LOG: the name, then each argument,
#   separated by tabs.
# * setup_develop also installs, as DevStack does (pip install -e), into
#   the virtualenv DEVSTACK_VENV when FAKE_DEVSTACK_PYTHON names a Python
#   whose pip and setuptools can do it; offline: no index, no
#   dependencies, no build isolation.
# * sudo runs the command as the current user.
#
# Expects FAKE_DEVSTACK_ROOT (a scratch directory) and FAKE_DEVSTACK_LOG.

FAKE_DEVSTACK_ROOT=${FAKE_DEVSTACK_ROOT:?FAKE_DEVSTACK_ROOT must be set}
FAKE_DEVSTACK_LOG=${FAKE_DEVSTACK_LOG:-$FAKE_DEVSTACK_ROOT/calls.log}

DEST=${DEST:-$FAKE_DEVSTACK_ROOT/opt/stack}
DATA_DIR=${DATA_DIR:-$DEST/data}
DEVSTACK_VENV=${DEVSTACK_VENV:-$DATA_DIR/venv}
STACK_USER=${STACK_USER:-$(id -un)}
SYSTEMD_DIR=${SYSTEMD_DIR:-$FAKE_DEVSTACK_ROOT/etc/systemd/system}
SYSTEMCTL=${SYSTEMCTL:-fake_systemctl}
ENABLED_SERVICES=${ENABLED_SERVICES:-}
DISABLED_SERVICES=${DISABLED_SERVICES:-}


# Recorders
# ---------

function _fake_record {
    local name=$1
    shift
    {
        printf '%s' "$name"
        printf '\t%s' "$@"
        printf '\n'
    } >> "$FAKE_DEVSTACK_LOG"
}

function setup_develop {
    _fake_record setup_develop "$@"
    if [[ -z "${FAKE_DEVSTACK_PYTHON:-}" ]]; then
        return 0
    fi
    if [[ ! -x "$DEVSTACK_VENV/bin/python" ]]; then
        "$FAKE_DEVSTACK_PYTHON" -m venv --without-pip "$DEVSTACK_VENV"
    fi
    # --ignore-installed: else pip uninstalls df-gmr from the environment
    # it runs in (the tests' own) before installing it under --prefix.
    "$FAKE_DEVSTACK_PYTHON" -m pip install --quiet --disable-pip-version-check \
        --no-index --no-deps --no-build-isolation --ignore-installed \
        --prefix "$DEVSTACK_VENV" -e "$1"
}

function pip_install {
    _fake_record pip_install "$@"
}

function run_process {
    if is_service_enabled "$1"; then
        _fake_record run_process "$@"
    fi
}

function stop_process {
    if is_service_enabled "$1"; then
        _fake_record stop_process "$@"
    fi
}

function fake_systemctl {
    _fake_record systemctl "$@"
}

function sudo {
    "$@"
}


# Messages
# --------

function echo_summary {
    echo "$@"
}

function warn {
    echo "WARNING: $*" >&2
}

function die {
    local line=$1
    shift
    echo "[ERROR] line $line: $*" >&2
    exit 1
}

function define_plugin {
    :
}

function plugin_requires {
    :
}

# trueorfalse <default> <variable name>
function trueorfalse {
    local default=$1
    local value=${!2:-}
    case "$value" in
        1|yes|Yes|YES|true|True|TRUE) echo True ;;
        0|no|No|NO|false|False|FALSE) echo False ;;
        *) echo "$default" ;;
    esac
}


# Services
# --------

function _fake_in_list {
    local item=$1
    local list=$2
    [[ ",$list," == *",$item,"* ]]
}

# is_service_enabled <service>... - succeed when one of them is enabled
function is_service_enabled {
    local service
    local prefix
    for service in "$@"; do
        if _fake_in_list "$service" "$ENABLED_SERVICES"; then
            return 0
        fi
        case "$service" in
            nova) prefix=n- ;;
            neutron) prefix=q- ;;
            cinder) prefix=c- ;;
            glance) prefix=g- ;;
            *) prefix="" ;;
        esac
        if [[ -n "$prefix" && ",$ENABLED_SERVICES" == *",$prefix"* ]]; then
            return 0
        fi
    done
    return 1
}

# enable_service <service>... - enable, unless disable_service was called
function enable_service {
    local service
    for service in "$@"; do
        if _fake_in_list "$service" "$DISABLED_SERVICES"; then
            warn "not enabling $service: it was disabled"
            continue
        fi
        if ! _fake_in_list "$service" "$ENABLED_SERVICES"; then
            ENABLED_SERVICES=${ENABLED_SERVICES:+$ENABLED_SERVICES,}$service
        fi
    done
}

function disable_service {
    local service
    local kept
    for service in "$@"; do
        DISABLED_SERVICES=${DISABLED_SERVICES:+$DISABLED_SERVICES,}$service
        kept=",$ENABLED_SERVICES,"
        kept=${kept//,$service,/,}
        kept=${kept#,}
        ENABLED_SERVICES=${kept%,}
    done
}


# INI files
# ---------

# _fake_ini_edit <file> <section> <option> <mode> [value] - print the file
# with the option set (mode "set": each line of the option in the section
# gets the value, or a new line goes right under the header) or removed
# (mode "delete")
function _fake_ini_edit {
    local exists=0
    if ini_has_option "$1" "$2" "$3"; then
        exists=1
    fi
    awk -v section="[$2]" -v option="$3" -v mode="$4" -v value="${5:-}" \
            -v exists="$exists" '
        function is_option(text) {
            sub(/^[ \t]+/, "", text)
            return index(text, option) == 1 &&
                substr(text, length(option) + 1) ~ /^[ \t]*=/
        }
        /^\[/ { inside = ($0 == section) }
        inside && is_option($0) {
            if (mode == "set") {
                match($0, /^[^=]*=[ \t]*/)
                print substr($0, 1, RLENGTH) value
            }
            next
        }
        { print }
        $0 == section && mode == "set" && !exists && !added {
            print option " = " value
            added = 1
        }
    ' "$1"
}

# _fake_ini_write <file> <text> - write the text, which ends with "."
# (command substitution would drop the trailing newlines otherwise)
function _fake_ini_write {
    printf '%s' "${2%.}" > "$1"
}

# iniset [-sudo] <file> <section> <option> <value>
function iniset {
    if [[ "$1" == "-sudo" ]]; then
        shift
    fi
    local file=$1
    local section=$2
    local option=$3
    local value=$4
    local edited
    if [[ -z "$section" || -z "$option" ]]; then
        return 0
    fi
    mkdir -p "$(dirname "$file")"
    touch "$file"
    if ! grep -qxF -- "[$section]" "$file"; then
        printf '\n[%s]\n' "$section" >> "$file"
    fi
    edited=$(_fake_ini_edit "$file" "$section" "$option" set "$value"
        echo .)
    _fake_ini_write "$file" "$edited"
}

# iniget <file> <section> <option> - print the value, trimmed
function iniget {
    awk -v section="[$2]" -v option="$3" '
        /^\[/ { inside = ($0 == section); next }
        inside {
            text = $0
            sub(/^[ \t]+/, "", text)
            if (index(text, option) == 1 &&
                substr(text, length(option) + 1) ~ /^[ \t]*=/) {
                sub(/^[^=]*=[ \t]*/, "", text)
                sub(/[ \t]+$/, "", text)
                print text
                exit
            }
        }
    ' "$1"
}

# ini_has_option [-sudo] <file> <section> <option>
function ini_has_option {
    if [[ "$1" == "-sudo" ]]; then
        shift
    fi
    [[ -f "$1" ]] || return 1
    awk -v section="[$2]" -v option="$3" '
        /^\[/ { inside = ($0 == section); next }
        inside {
            text = $0
            sub(/^[ \t]+/, "", text)
            if (index(text, option) == 1 &&
                substr(text, length(option) + 1) ~ /^[ \t]*=/) {
                found = 1
                exit
            }
        }
        END { exit !found }
    ' "$1"
}

# inidelete [-sudo] <file> <section> <option> - remove every line of the
# option in the section
function inidelete {
    if [[ "$1" == "-sudo" ]]; then
        shift
    fi
    local file=$1
    local edited
    if [[ -z "$2" || -z "$3" || ! -f "$file" ]]; then
        return 0
    fi
    edited=$(_fake_ini_edit "$file" "$2" "$3" delete
        echo .)
    _fake_ini_write "$file" "$edited"
}
