# Sourced by .ci/run (and usable by hand: `source .ci/postgres.sh && postgres_start`).
# Starts a throw-away PostgreSQL from Debian's packages on 127.0.0.1 (a free port, a temporary data
# directory, trust authentication on loopback only) unless TIDINGS_TEST_POSTGRES already names a server,
# and exports TIDINGS_TEST_POSTGRES for the tests. postgres_stop stops it and removes the directory.

postgres_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

postgres_start() {
    if [ -n "${TIDINGS_TEST_POSTGRES:-}" ]; then
        echo "postgres: using TIDINGS_TEST_POSTGRES from the environment"
        return 0
    fi
    if [ -z "$(postgres_bin)" ]; then
        echo "postgres: installing Debian's postgresql package"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    fi
    local bin user port
    bin="$(postgres_bin)"
    [ -n "$bin" ] || { echo "postgres: no server binaries after installing" >&2; return 1; }
    # the server refuses to run as root: run it as the package's own user
    user="$(id -un)"
    if [ "$(id -u)" = 0 ]; then user=postgres; fi
    TIDINGS_PG_DIR="$(mktemp -d /tmp/tidings-pg.XXXXXX)"
    export TIDINGS_PG_DIR
    chown "$user" "$TIDINGS_PG_DIR"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
    as_pg "$bin/initdb" -D "$TIDINGS_PG_DIR/data" -U postgres --auth=trust -E UTF8 >"$TIDINGS_PG_DIR/initdb.log" \
        || { cat "$TIDINGS_PG_DIR/initdb.log" >&2; return 1; }
    as_pg "$bin/pg_ctl" -D "$TIDINGS_PG_DIR/data" -l "$TIDINGS_PG_DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $TIDINGS_PG_DIR -c fsync=on -c max_connections=100" start \
        >/dev/null || { cat "$TIDINGS_PG_DIR/server.log" >&2; return 1; }
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres tidings_test
    export TIDINGS_TEST_POSTGRES="postgresql://postgres@127.0.0.1:$port/tidings_test"
    echo "postgres: started on 127.0.0.1:$port ($TIDINGS_TEST_POSTGRES)"
}

postgres_stop() {
    [ -n "${TIDINGS_PG_DIR:-}" ] || return 0
    local bin
    bin="$(postgres_bin)"
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$bin/pg_ctl" -D "$TIDINGS_PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    else
        "$bin/pg_ctl" -D "$TIDINGS_PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$TIDINGS_PG_DIR"
    unset TIDINGS_PG_DIR
}
