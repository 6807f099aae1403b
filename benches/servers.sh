# Shared by the TURN bench scripts (sourced, not run): start `floe serve` and coturn on
# free loopback ports with the same credentials, each with its defaults apart from
# addresses, ports, credentials and loopback peers, and stop them again.
#
# Needs: $work (a scratch directory), $floe_bin, server_cpu (an array, maybe empty: a
# taskset prefix), FLOE_ARGS (extra `floe serve` flags). Sets floe_addr, floe_pid,
# coturn_addr, coturn_pid.

floe_pid=""
coturn_pid=""

free_udp_port() {
    python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stop_servers() {
    for pid in $floe_pid $coturn_pid; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $floe_pid $coturn_pid; do
        for _ in $(seq 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    floe_pid=""
    coturn_pid=""
}

start_servers() {
    # floe: port 0, address from its JSON line. SIGTERM would drain for up to
    # --drain-seconds; the benches stop it at once.
    "${server_cpu[@]}" "$floe_bin" serve --listen 127.0.0.1:0 --user alice:wonderland \
        --allow-loopback-peers --min-port 2000 --max-port 16999 --drain-seconds 0 \
        ${FLOE_ARGS:-} \
        >"$work/floe.out" 2>"$work/floe.err" &
    floe_pid=$!
    for _ in $(seq 100); do
        [ -s "$work/floe.out" ] && break
        sleep 0.1
    done
    floe_addr=$(head -1 "$work/floe.out" | jq -r '.listening.udp[0]')
    if [ -z "$floe_addr" ] || [ "$floe_addr" = null ]; then
        echo "floe serve did not start:" >&2
        cat "$work/floe.err" >&2
        return 1
    fi

    coturn_port=$(free_udp_port)
    "${server_cpu[@]}" turnserver -n --no-cli --listening-ip 127.0.0.1 --listening-port "$coturn_port" \
        --relay-ip 127.0.0.1 --min-port 17000 --max-port 31999 -a -u alice:wonderland -r floe \
        --allow-loopback-peers --no-dtls --no-tls --no-tcp --no-stdout-log \
        --log-file "$work/coturn.log" >/dev/null 2>&1 &
    coturn_pid=$!
    coturn_addr=127.0.0.1:$coturn_port
    for _ in $(seq 50); do
        ss -Huln "sport = :$coturn_port" | grep -q . && break
        sleep 0.1
    done
    sleep 0.5
}
