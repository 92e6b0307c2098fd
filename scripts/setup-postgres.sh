#!/usr/bin/env bash
# Starts a PostgreSQL 15 server of the checkout's own, for the Postgres store's tests and benchmark: installs Debian's
# postgresql-15 when it is missing, makes a cluster in .build/postgres (as an unprivileged user: initdb refuses root),
# and starts it on 127.0.0.1 with trust authentication for the superuser `agentbox`. Prints its URL on stdout
# (`postgres://agentbox@127.0.0.1:PORT/postgres`); progress goes to stderr. Idempotent: when the server is running it
# only prints the URL. Stop it with `pg_ctl -D .build/postgres/data stop` (as its user).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=/usr/lib/postgresql/15/bin
role=agentbox
if [ ! -x "$bin/initdb" ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "agentbox: installing postgresql-15" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql-15 >/dev/null
fi

# Who runs the server: root cannot, so root runs it as a system user made for it.
if [ "$(id -u)" -eq 0 ]; then
  owner=agentbox-pg
  if ! id "$owner" >/dev/null 2>&1; then
    echo "agentbox: creating the system user $owner for PostgreSQL" >&2
    useradd --system --no-create-home --shell /usr/sbin/nologin "$owner"
  fi
  as_owner() { runuser -u "$owner" -- "$@"; }
else
  owner=$(id -un)
  as_owner() { "$@"; }
fi

# The cluster lives in the checkout's .build/postgres, unless the server's user cannot reach it there (a checkout
# under a private home directory): then in /var/tmp, under a name of the checkout's own.
root=$(pwd)/.build/postgres
mkdir -p "$root"
if [ "$(id -u)" -eq 0 ]; then
  chown "$owner" "$root"
  if ! as_owner test -w "$root"; then
    root=/var/tmp/agentbox-postgres-$(pwd | sha256sum | cut -c1-12)
    mkdir -p "$root"
    chown "$owner" "$root"
  fi
fi
data=$root/data

if [ -f "$root/port" ] && as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  echo "postgres://$role@127.0.0.1:$(cat "$root/port")/postgres"
  exit 0
fi

if [ ! -f "$data/PG_VERSION" ]; then
  echo "agentbox: initdb in $data" >&2
  rm -rf "$data"
  as_owner "$bin/initdb" -D "$data" -U "$role" --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$root/initdb.log" 2>&1 \
    || { cat "$root/initdb.log" >&2; exit 1; }
fi

# A free port: 55432 unless it is taken by another server.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=55432
while ! port_free "$port"; do
  port=$((port + 1))
  if [ "$port" -gt 55532 ]; then echo "agentbox: no free port in 55432-55532 for PostgreSQL" >&2; exit 1; fi
done
echo "$port" > "$root/port"

# Loopback only, no Unix socket (its path could exceed the kernel's limit), enough connections for the test suite's
# stores running at once. fsync stays on: the store's durability is what the tests check.
cat > "$data/postgresql.auto.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
max_connections = 300
shared_buffers = 256MB
EOF
chown "$owner" "$data/postgresql.auto.conf" 2>/dev/null || true

echo "agentbox: starting PostgreSQL on 127.0.0.1:$port" >&2
if ! as_owner "$bin/pg_ctl" -D "$data" -l "$root/server.log" -w -t 60 start >/dev/null; then
  tail -n 20 "$root/server.log" >&2 || true
  exit 1
fi
echo "postgres://$role@127.0.0.1:$port/postgres"
