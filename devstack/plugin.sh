#!/usr/bin/env bash
# devstack plugin for telemeter: installs the package, writes
# /etc/telemeter/telemeter.conf from devstack's RabbitMQ and database
# settings, creates the schema and runs the three daemons and
# telemeter-api (Keystone endpoint `metering`) as devstack services.

# Save trace setting
_XTRACE_TELEMETER=$(set +o | grep xtrace)
set -o xtrace

function install_telemeter {
    setup_develop "$TELEMETER_DIR"
    if [ "$TELEMETER_BACKEND" = mysql ]; then
        pip_install PyMySQL
    elif [ "$TELEMETER_BACKEND" = postgresql ]; then
        pip_install 'psycopg[binary]'
    fi
}

function _telemeter_database_url {
    case "$TELEMETER_BACKEND" in
        sqlite) echo "sqlite:///$DATA_DIR/telemeter/telemeter.db" ;;
        mysql|postgresql)
            recreate_database telemeter
            database_connection_url telemeter ;;
        *) die $LINENO "TELEMETER_BACKEND must be sqlite, mysql or postgresql" ;;
    esac
}

function configure_telemeter {
    sudo install -d -o "$STACK_USER" "$TELEMETER_CONF_DIR" "$DATA_DIR/telemeter"
    install -m 644 "$TELEMETER_DIR"/etc/telemeter/*.yaml "$TELEMETER_CONF_DIR/"
    cat > "$TELEMETER_CONF_DIR/polling.yaml" <<YAML
sources:
  - name: devstack
    interval: $TELEMETER_POLLING_INTERVAL
    meters: [$TELEMETER_POLLING_METERS]
YAML
    iniset "$TELEMETER_CONF" DEFAULT transport_url "$(get_transport_url)"
    iniset "$TELEMETER_CONF" DEFAULT debug "$ENABLE_DEBUG_LOG_LEVEL"
    iniset "$TELEMETER_CONF" oslo_messaging_notifications topics notifications
    iniset "$TELEMETER_CONF" database connection "$(_telemeter_database_url)"
    iniset "$TELEMETER_CONF" publisher telemetry_secret \
        "$(generate_hex_string 16)"
    # Samples travel over the bus in devstack; keep UDP on loopback.
    iniset "$TELEMETER_CONF" collector udp_address 127.0.0.1
    # /metrics and /healthz of every daemon worker, on loopback:
    #   curl http://127.0.0.1:9930/healthz   (collector; agent 9920,
    #   polling 9910; worker i of a daemon on port + i)
    iniset "$TELEMETER_CONF" health enabled "$TELEMETER_HEALTH_ENABLED"
    iniset "$TELEMETER_CONF" health host 127.0.0.1
    if is_service_enabled keystone; then
        # Credentials for the polling agent's API pollsters and discoveries.
        create_service_user telemeter admin
        configure_keystone_authtoken_middleware "$TELEMETER_CONF" telemeter \
            service_credentials
    fi
    # Let nova send the notifications the agent turns into samples.
    if is_service_enabled nova; then
        iniset "$NOVA_CONF" oslo_messaging_notifications driver messagingv2
    fi
    # telemeter declares durable queues and exchanges; every service that
    # notifies must declare them the same way, or RabbitMQ refuses one side
    # (README, "Delivery").
    local service_conf
    for service_conf in "${NOVA_CONF:-}" "${CINDER_CONF:-}" \
            "${GLANCE_API_CONF:-}" "${NEUTRON_CONF:-}" "${KEYSTONE_CONF:-}" \
            "${HEAT_CONF:-}"; do
        if [[ -n "$service_conf" && -f "$service_conf" ]]; then
            iniset "$service_conf" oslo_messaging_rabbit amqp_durable_queues True
        fi
    done
}

# The v2 API: Keystone tokens when keystone runs (the `metering` service
# and endpoint are registered for it), no auth otherwise.
function configure_telemeter_api {
    iniset "$TELEMETER_CONF" api host "$TELEMETER_API_LISTEN"
    iniset "$TELEMETER_CONF" api port "$TELEMETER_API_PORT"
    if is_service_enabled keystone; then
        iniset "$TELEMETER_CONF" api auth_mode keystone
        get_or_create_service ceilometer metering \
            "Telemetry: Ceilometer's v2 API (telemeter-api)"
        get_or_create_endpoint metering "$REGION_NAME" \
            "$TELEMETER_API_URL" "$TELEMETER_API_URL" "$TELEMETER_API_URL"
    else
        iniset "$TELEMETER_CONF" api auth_mode noauth
    fi
}

function init_telemeter {
    "$TELEMETER_BIN_DIR/telemeter-dbsync" --config-file "$TELEMETER_CONF"
}

function start_telemeter {
    run_process tm-coll "$TELEMETER_BIN_DIR/telemeter-collector --config-file $TELEMETER_CONF"
    run_process tm-notif "$TELEMETER_BIN_DIR/telemeter-agent-notification --config-file $TELEMETER_CONF"
    run_process tm-poll "$TELEMETER_BIN_DIR/telemeter-polling --config-file $TELEMETER_CONF --polling-namespaces compute central"
    run_process tm-api "$TELEMETER_BIN_DIR/telemeter-api --config-file $TELEMETER_CONF"
}

function stop_telemeter {
    local service
    for service in tm-api tm-poll tm-notif tm-coll; do
        stop_process "$service"
    done
}

if is_service_enabled tm-poll tm-notif tm-coll tm-api; then
    if [[ "$1" == "stack" && "$2" == "install" ]]; then
        echo_summary "Installing telemeter"
        install_telemeter
    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then
        echo_summary "Configuring telemeter"
        configure_telemeter
        if is_service_enabled tm-api; then
            configure_telemeter_api
        fi
    elif [[ "$1" == "stack" && "$2" == "extra" ]]; then
        echo_summary "Initializing and starting telemeter"
        init_telemeter
        start_telemeter
    fi
    if [[ "$1" == "unstack" ]]; then
        stop_telemeter
    fi
fi

# Restore xtrace
$_XTRACE_TELEMETER
