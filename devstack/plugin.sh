#!/bin/bash
#
# devstack/plugin.sh - DevStack plugin for df_gmr, Guru Meditation Reports
# for eventlet and oslo.service daemons
#
# DevStack sources this file as "plugin.sh <mode> [phase]":
#
#   stack install      install df_gmr into DevStack's Python environment
#   stack post-config  enable reports for the selected services: a systemd
#                      drop-in with DF_GMR_* variables per unit and the
#                      [oslo_reports] and [df_gmr] keys in their config files
#   stack extra        start the df-gmr-demo service (DF_GMR_DEMO=True)
#   unstack            stop df-gmr-demo; undo what post-config changed
#   clean              as unstack, then remove DF_GMR_LOG_DIR if the plugin
#                      created it
#
# Other modes and phases do nothing.  What post-config changes is recorded
# in DF_GMR_STATE_DIR, so that running it twice changes nothing more and
# unstack/clean remove exactly that.
#
# The environment goes into a drop-in, $SYSTEMD_DIR/devstack@<svc>.service.d/
# df-gmr.conf, rather than into devstack@<svc>.service itself: at
# post-config DevStack has not written the units of the services it is
# about to start, and when it writes one (write_user_unit_file) it sets the
# unit's "Environment" option with iniset, which would overwrite lines
# added there.  systemd reads the drop-in whenever it loads the unit.

# Save trace setting
_DF_GMR_XTRACE=$(set +o | grep xtrace)
set +o xtrace

DF_GMR_DROPIN_NAME=df-gmr.conf
_DF_GMR_UNITS_CHANGED=False


# State: one record a line, fields separated by tabs:
#   key      <file> <section> <option> <value>   a key the plugin set
#   section  <file> <section>                    a section it added
#   dropin   <path>                              a drop-in it wrote
#   logdir   <path>                              the log dir it created
# ---------------------------------------------------------------------

function _df_gmr_state_file {
    echo "$DF_GMR_STATE_DIR/changes"
}

# _df_gmr_state_add <field>... - record a change (once)
function _df_gmr_state_add {
    local record
    local state_file
    record=$(IFS=$'\t'; echo "$*")
    state_file=$(_df_gmr_state_file)
    mkdir -p "$DF_GMR_STATE_DIR"
    touch "$state_file"
    if ! grep -qxF -- "$record" "$state_file"; then
        echo "$record" >> "$state_file"
    fi
}

# _df_gmr_state_remove <field>... - forget a change
function _df_gmr_state_remove {
    local record
    local state_file
    local remaining
    record=$(IFS=$'\t'; echo "$*")
    state_file=$(_df_gmr_state_file)
    if [[ ! -f "$state_file" ]]; then
        return 0
    fi
    remaining=$(grep -vxF -- "$record" "$state_file" || true)
    if [[ -n "$remaining" ]]; then
        echo "$remaining" > "$state_file"
    else
        : > "$state_file"
    fi
}

# _df_gmr_state_records <kind> - print the records of a kind, kind omitted
function _df_gmr_state_records {
    local kind=$1
    local state_file
    state_file=$(_df_gmr_state_file)
    if [[ -f "$state_file" ]]; then
        awk -F'\t' -v kind="$kind" '$1 == kind' "$state_file" | cut -f2-
    fi
}

# _df_gmr_recorded_value <file> <section> <option> - print the value the
# plugin recorded for a key; fail when it did not set that key
function _df_gmr_recorded_value {
    local state_file
    state_file=$(_df_gmr_state_file)
    [[ -f "$state_file" ]] || return 1
    awk -F'\t' -v file="$1" -v section="$2" -v option="$3" '
        $1 == "key" && $2 == file && $3 == section && $4 == option {
            print $5; found = 1
        }
        END { exit !found }' "$state_file"
}


# Services, units and config files
# --------------------------------

# _df_gmr_services - print the selected services that are enabled
function _df_gmr_services {
    local requested=${DF_GMR_SERVICES:-$DF_GMR_CANDIDATE_SERVICES}
    local service
    for service in ${requested//,/ }; do
        if is_service_enabled "$service"; then
            echo "$service"
        fi
    done
}

# _df_gmr_units_of <service> - print the DevStack services (systemd units
# devstack@<name>.service) that run for a service: DevStack enables the
# nova conductors and the neutron server processes only when it starts
# them, after post-config.
function _df_gmr_units_of {
    local service=$1
    local cell
    echo "$service"
    case "$service" in
        n-cond)
            echo n-super-cond
            for cell in $(seq 1 "${NOVA_NUM_CELLS:-1}"); do
                echo "n-cond-cell$cell"
            done
            ;;
        q-svc|neutron-api)
            echo neutron-api
            echo neutron-rpc-server
            echo neutron-periodic-workers
            if [[ "${Q_AGENT:-}" == "ovn" ]]; then
                echo neutron-ovn-maintenance-worker
            fi
            ;;
    esac
}

# _df_gmr_units - print the units to enable reports for, once each
function _df_gmr_units {
    local service
    local unit
    local seen=" "
    for service in $(_df_gmr_services); do
        for unit in $(_df_gmr_units_of "$service"); do
            if [[ "$seen" != *" $unit "* ]]; then
                seen+="$unit "
                echo "$unit"
            fi
        done
    done
}

# _df_gmr_config_file_of <unit> - print the config file the unit reads,
# nothing when DevStack did not define its variable
function _df_gmr_config_file_of {
    local unit=$1
    local candidates=""
    local variable
    case "$unit" in
        n-cond-cell*)
            if [[ -n "${NOVA_CONF_DIR:-}" ]]; then
                echo "$NOVA_CONF_DIR/nova_cell${unit#n-cond-cell}.conf"
            fi
            return 0
            ;;
        n-cpu|n-cpu-*) candidates="NOVA_CPU_CONF" ;;
        n-*) candidates="NOVA_CONF" ;;
        q-*|neutron-*) candidates="NEUTRON_CONF" ;;
        c-*) candidates="CINDER_CONF" ;;
        g-*) candidates="GLANCE_API_CONF" ;;
        df-gmr-*) candidates="" ;;
        df-*) candidates="DRAGONFLOW_CONF DF_CONFIG_FILE" ;;
    esac
    for variable in $candidates; do
        if [[ -n "${!variable:-}" ]]; then
            echo "${!variable}"
            return 0
        fi
    done
}

# _df_gmr_config_files - print the config files of the units, once each
function _df_gmr_config_files {
    local unit
    local file
    local seen=$'\n'
    for unit in $(_df_gmr_units); do
        file=$(_df_gmr_config_file_of "$unit")
        if [[ -n "$file" && "$seen" != *$'\n'"$file"$'\n'* ]]; then
            seen+="$file"$'\n'
            echo "$file"
        fi
    done
}


# systemd drop-ins
# ----------------

function _df_gmr_dropin_path {
    local unit=$1
    echo "$SYSTEMD_DIR/devstack@$unit.service.d/$DF_GMR_DROPIN_NAME"
}

# _df_gmr_environment <unit> - print the variables for a unit, one a line
function _df_gmr_environment {
    local unit=$1
    echo "DF_GMR_ENABLE=1"
    echo "DF_GMR_SERVICE_NAME=$unit"
    echo "DF_GMR_FORMAT=$DF_GMR_FORMAT"
    if [[ -n "$DF_GMR_LOG_DIR" ]]; then
        echo "DF_GMR_LOG_DIR=$DF_GMR_LOG_DIR"
    fi
}

# _df_gmr_systemd_quote <assignment> - quote for an Environment= line
function _df_gmr_systemd_quote {
    local value=$1
    value=${value//\\/\\\\}
    value=${value//\"/\\\"}
    value=${value//'%'/'%%'}
    echo "\"$value\""
}

# _df_gmr_write_dropin <unit> - write the unit's drop-in if it differs
function _df_gmr_write_dropin {
    local unit=$1
    local path
    local content
    local assignment
    path=$(_df_gmr_dropin_path "$unit")
    content="# Written by the df-gmr DevStack plugin; unstack.sh removes it."
    content+=$'\n'"[Service]"
    while IFS= read -r assignment; do
        content+=$'\n'"Environment=$(_df_gmr_systemd_quote "$assignment")"
    done <<< "$(_df_gmr_environment "$unit")"
    _df_gmr_state_add dropin "$path"
    if [[ -f "$path" && "$(cat "$path")" == "$content" ]]; then
        return 0
    fi
    sudo mkdir -p "$(dirname "$path")"
    echo "$content" | sudo tee "$path" > /dev/null
    _DF_GMR_UNITS_CHANGED=True
}

# _df_gmr_remove_dropin <path> - remove a drop-in (and its directory when
# that is left empty)
function _df_gmr_remove_dropin {
    local path=$1
    if [[ -f "$path" ]]; then
        sudo rm -f "$path"
        sudo rmdir --ignore-fail-on-non-empty "$(dirname "$path")"
        _DF_GMR_UNITS_CHANGED=True
    fi
    _df_gmr_state_remove dropin "$path"
}

# _df_gmr_systemd_reload - make systemd read changed drop-ins
function _df_gmr_systemd_reload {
    if [[ "$_DF_GMR_UNITS_CHANGED" == "True" && -n "${SYSTEMCTL:-}" ]]; then
        $SYSTEMCTL daemon-reload
    fi
    _DF_GMR_UNITS_CHANGED=False
}


# Config files
# ------------

# _df_gmr_ini_set <file> <section> <option> <value> - set a key, unless
# someone else set it, and record it
function _df_gmr_ini_set {
    local file=$1
    local section=$2
    local option=$3
    local value=$4
    local recorded=""
    local ours=False
    if recorded=$(_df_gmr_recorded_value "$file" "$section" "$option"); then
        ours=True
    fi
    if [[ "$ours" == "False" ]] && \
            ini_has_option "$file" "$section" "$option"; then
        echo "df-gmr: keeping [$section] $option of $file as it is"
        return 0
    fi
    if ! grep -qxF -- "[$section]" "$file"; then
        _df_gmr_state_add section "$file" "$section"
    fi
    if ! ini_has_option "$file" "$section" "$option" || \
            [[ "$(iniget "$file" "$section" "$option")" != "$value" ]]; then
        iniset "$file" "$section" "$option" "$value"
    fi
    if [[ "$ours" == "True" && "$recorded" != "$value" ]]; then
        _df_gmr_state_remove key "$file" "$section" "$option" "$recorded"
    fi
    _df_gmr_state_add key "$file" "$section" "$option" "$value"
}

# _df_gmr_ini_unset <file> <section> <option> <value> - remove a key the
# plugin set, unless its value changed since
function _df_gmr_ini_unset {
    local file=$1
    local section=$2
    local option=$3
    local value=$4
    if [[ -f "$file" ]] && ini_has_option "$file" "$section" "$option" && \
            [[ "$(iniget "$file" "$section" "$option")" == "$value" ]]; then
        inidelete "$file" "$section" "$option"
    fi
    _df_gmr_state_remove key "$file" "$section" "$option" "$value"
}

# _df_gmr_remove_section <file> <section> - remove a section the plugin
# added, with the blank line iniset put before it, once no key is left
function _df_gmr_remove_section {
    local file=$1
    local section=$2
    local rewritten
    if [[ -f "$file" ]]; then
        rewritten=$(mktemp)
        if awk -v header="[$section]" '
            { line[NR] = $0 }
            END {
                start = 0
                for (i = 1; i <= NR; i++) {
                    if (line[i] == header) { start = i; break }
                }
                if (start == 0) { exit 1 }
                for (i = start + 1; i <= NR && line[i] !~ /^\[/; i++) {
                    if (line[i] !~ /^[ \t]*$/) { exit 1 }
                }
                first = start
                if (start > 1 && line[start - 1] ~ /^[ \t]*$/) {
                    first = start - 1
                }
                for (i = 1; i <= NR; i++) {
                    if (i < first || i > start) { print line[i] }
                }
            }' "$file" > "$rewritten"; then
            cat "$rewritten" > "$file"
        fi
        rm -f "$rewritten"
        if grep -qxF -- "[$section]" "$file"; then
            # Someone else's keys are in it now: it stays.
            return 0
        fi
    fi
    _df_gmr_state_remove section "$file" "$section"
}

# _df_gmr_remove_sections - remove the sections the plugin added that have
# no key left
function _df_gmr_remove_sections {
    local records
    local file
    local section
    records=$(_df_gmr_state_records section)
    while IFS=$'\t' read -r file section; do
        if [[ -n "$file" ]]; then
            _df_gmr_remove_section "$file" "$section"
        fi
    done <<< "$records"
}


# Phases
# ------

# install_df_gmr - install df_gmr into DevStack's Python environment, then
# check that DF_GMR_ENABLE=1 activates it there (df-gmr doctor)
function install_df_gmr {
    setup_develop "$DF_GMR_DIR"
    _df_gmr_check_activation
}

# _df_gmr_check_activation - warn when DevStack's Python cannot activate
# df_gmr (the services would then die of SIGUSR2 instead of reporting)
function _df_gmr_check_activation {
    local python=${PYTHON:-python3}
    if [[ -n "${DEVSTACK_VENV:-}" && -x "$DEVSTACK_VENV/bin/python" ]]; then
        python=$DEVSTACK_VENV/bin/python
    fi
    if ! "$python" -m df_gmr.cli doctor --python "$python"; then
        warn "df_gmr is installed but DF_GMR_ENABLE=1 does not activate it" \
            "in $python (see above): kill -USR2 would stop the services"
    fi
}

# _df_gmr_check_settings - stop with a clear message on a wrong setting
function _df_gmr_check_settings {
    case "$DF_GMR_FORMAT" in
        text|json) ;;
        *) die $LINENO "DF_GMR_FORMAT must be text or json, not '$DF_GMR_FORMAT'" ;;
    esac
    if [[ -n "$DF_GMR_LOG_DIR" && "$DF_GMR_LOG_DIR" != /* ]]; then
        die $LINENO "DF_GMR_LOG_DIR must be an absolute path, not '$DF_GMR_LOG_DIR'"
    fi
}

# _df_gmr_create_log_dir - create DF_GMR_LOG_DIR for the stack user only
function _df_gmr_create_log_dir {
    if [[ -z "$DF_GMR_LOG_DIR" || -d "$DF_GMR_LOG_DIR" ]]; then
        return 0
    fi
    sudo install -d -m 0700 -o "$STACK_USER" "$DF_GMR_LOG_DIR"
    _df_gmr_state_add logdir "$DF_GMR_LOG_DIR"
}

# configure_df_gmr - enable reports for the selected services
function configure_df_gmr {
    local unit
    local file
    local section
    local option
    local value
    local records
    local wanted_dropins=$'\n'
    local wanted_keys=$'\n'

    _df_gmr_check_settings
    _df_gmr_create_log_dir

    for unit in $(_df_gmr_units); do
        wanted_dropins+="$(_df_gmr_dropin_path "$unit")"$'\n'
        _df_gmr_write_dropin "$unit"
    done

    for file in $(_df_gmr_config_files); do
        if [[ ! -f "$file" ]]; then
            echo "df-gmr: $file does not exist, not configuring it"
            continue
        fi
        if [[ -n "$DF_GMR_LOG_DIR" ]]; then
            _df_gmr_ini_set "$file" oslo_reports log_dir "$DF_GMR_LOG_DIR"
            wanted_keys+="$file"$'\t'oslo_reports$'\t'log_dir$'\n'
        fi
        _df_gmr_ini_set "$file" df_gmr format "$DF_GMR_FORMAT"
        wanted_keys+="$file"$'\t'df_gmr$'\t'format$'\n'
    done

    # Undo what an earlier run did for services or keys no longer wanted.
    records=$(_df_gmr_state_records dropin)
    while IFS= read -r file; do
        if [[ -n "$file" && "$wanted_dropins" != *$'\n'"$file"$'\n'* ]]; then
            _df_gmr_remove_dropin "$file"
        fi
    done <<< "$records"
    records=$(_df_gmr_state_records key)
    while IFS=$'\t' read -r file section option value; do
        if [[ -n "$file" && "$wanted_keys" != *$'\n'"$file"$'\t'"$section"$'\t'"$option"$'\n'* ]]; then
            _df_gmr_ini_unset "$file" "$section" "$option" "$value"
        fi
    done <<< "$records"
    _df_gmr_remove_sections

    _df_gmr_systemd_reload
}

# start_df_gmr_demo - run the demo daemon as the service df-gmr-demo
function start_df_gmr_demo {
    local python=${PYTHON:-}
    local command
    local environment
    if [[ -z "$python" ]]; then
        python=$(command -v python3)
    fi
    command="$python -m df_gmr.demo serve --workers $DF_GMR_DEMO_WORKERS"
    if [[ -n "$DF_GMR_LOG_DIR" ]]; then
        command+=" --log-dir $DF_GMR_LOG_DIR"
    fi
    environment=$(_df_gmr_environment df-gmr-demo | tr '\n' ' ')
    run_process df-gmr-demo "$command" "" "" "${environment% }"
}

# unconfigure_df_gmr - undo what configure_df_gmr did, except the log dir
function unconfigure_df_gmr {
    local records
    local file
    local section
    local option
    local value
    records=$(_df_gmr_state_records dropin)
    while IFS= read -r file; do
        if [[ -n "$file" ]]; then
            _df_gmr_remove_dropin "$file"
        fi
    done <<< "$records"
    records=$(_df_gmr_state_records key)
    while IFS=$'\t' read -r file section option value; do
        if [[ -n "$file" ]]; then
            _df_gmr_ini_unset "$file" "$section" "$option" "$value"
        fi
    done <<< "$records"
    _df_gmr_remove_sections
    _df_gmr_systemd_reload
}

# cleanup_df_gmr - remove the log dir the plugin created, and its state
function cleanup_df_gmr {
    local records
    local path
    records=$(_df_gmr_state_records logdir)
    while IFS= read -r path; do
        if [[ -n "$path" ]]; then
            sudo rm -rf "$path"
            _df_gmr_state_remove logdir "$path"
        fi
    done <<< "$records"
    if [[ -d "$DF_GMR_STATE_DIR" && ! -s "$(_df_gmr_state_file)" ]]; then
        rm -rf "$DF_GMR_STATE_DIR"
    fi
}

# Dispatcher
# ----------

if is_service_enabled df-gmr; then
    case "${1:-}/${2:-}" in
        stack/install)
            echo_summary "Installing df_gmr"
            install_df_gmr
            ;;
        stack/post-config)
            echo_summary "Enabling Guru Meditation Reports (df_gmr)"
            configure_df_gmr
            ;;
        stack/extra)
            if is_service_enabled df-gmr-demo; then
                echo_summary "Starting the df_gmr demo daemon"
                start_df_gmr_demo
            fi
            ;;
        unstack/*)
            if is_service_enabled df-gmr-demo; then
                stop_process df-gmr-demo
            fi
            unconfigure_df_gmr
            ;;
        clean/*)
            if is_service_enabled df-gmr-demo; then
                stop_process df-gmr-demo
            fi
            unconfigure_df_gmr
            cleanup_df_gmr
            ;;
    esac
fi

# Restore xtrace
$_DF_GMR_XTRACE
