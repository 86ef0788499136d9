#!/bin/sh
# Initialise a Postgres cluster on first start, then run the server in the
# foreground on 0.0.0.0:5432 with password (scram-sha-256) authentication.
#
# POSTGRES_PASSWORD (required): the superuser `postgres` password.
set -eu

: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  chown postgres "$pwfile"
  runuser -u postgres -- initdb --pgdata="$PGDATA" --username=postgres \
    --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  {
    echo "host all all 0.0.0.0/0 scram-sha-256"
    echo "host all all ::/0 scram-sha-256"
  } >> "$PGDATA/pg_hba.conf"
fi

exec runuser -u postgres -- postgres -D "$PGDATA" \
  -c listen_addresses='*' -c port=5432 -c unix_socket_directories=/run/postgresql
