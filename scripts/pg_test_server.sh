#!/bin/sh
# A throwaway PostgreSQL server on loopback for the tests.
#
#   eval "$(scripts/pg_test_server.sh start)"    # prints export lines: LABELAUDIT_TEST_PG_URL, LABELAUDIT_TEST_PG_DIR
#   scripts/pg_test_server.sh stop "$LABELAUDIT_TEST_PG_DIR"   # stops it and deletes its data (idempotent)
#
# PostgreSQL refuses to run as root: as root, the server runs as the Debian package's `postgres` user.
# Listens on 127.0.0.1 only, trust authentication, a free port; the data lives in a temporary folder.
set -eu

pg_bin() {
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$d/initdb" ] && { echo "$d"; return 0; }
    done
    command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
    echo "pg_test_server: no PostgreSQL found (apt-get install postgresql)" >&2
    return 1
}

as_owner() {  # run a command as the server's owner
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    bin=$(pg_bin)
    dir=$(mktemp -d "${TMPDIR:-/tmp}/labelaudit-pg.XXXXXX")
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    port=$(free_port)
    as_owner "$bin/initdb" -D "$dir/data" -U labelaudit --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir" start >/dev/null \
        || { cat "$dir/server.log" >&2; exit 1; }
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U labelaudit labelaudit_test
    echo "export LABELAUDIT_TEST_PG_DIR='$dir'"
    echo "export LABELAUDIT_TEST_PG_URL='postgresql+psycopg://labelaudit@127.0.0.1:$port/labelaudit_test'"
    echo "pg_test_server: PostgreSQL on 127.0.0.1:$port (data in $dir)" >&2
}

stop() {
    dir=${1:-${LABELAUDIT_TEST_PG_DIR:-}}
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    bin=$(pg_bin)
    [ -f "$dir/data/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
