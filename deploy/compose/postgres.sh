#!/bin/bash
# A PostgreSQL server of the compose cluster (compose.yaml, services `pg-state` and `pg-keys`): on its first start it
# creates the database, its owner and runtime roles with the passwords from the init step, and accepts only TLS
# connections with passwords (scram-sha-256). Runs as root in the tools image, and serves as the postgres user.
#   PG_HOST      the server's name: its certificate is /db-secrets/$PG_HOST.pem
#   PG_DATABASE  the database; PG_OWNER and PG_RUNTIME its two roles (deploy/README.md, section 1)
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
data=/var/lib/postgresql/data run=/var/lib/postgresql/run tls=/var/lib/postgresql/tls
mkdir -p "$data" "$run" "$tls"
chown postgres:postgres "$data" "$run" "$tls" && chmod 700 "$data" "$tls"
install -o postgres -g postgres -m 600 "/db-secrets/$PG_HOST.pem" "$tls/server.pem"
install -o postgres -g postgres -m 600 "/db-secrets/$PG_HOST-key.pem" "$tls/server-key.pem"
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

if [[ ! -s "$data/PG_VERSION" ]]; then
  as_postgres "$bin/initdb" -D "$data" -U postgres --auth-local=peer --auth-host=reject >/dev/null
  printf 'local all postgres peer\nhostssl all all all scram-sha-256\n' >"$data/pg_hba.conf"
  as_postgres "$bin/pg_ctl" -D "$data" -o "-c listen_addresses='' -k $run" -w start >/dev/null
  as_postgres "$bin/psql" -h "$run" -U postgres -v ON_ERROR_STOP=1 -q \
    -v owner="$PG_OWNER" -v runtime="$PG_RUNTIME" -v database="$PG_DATABASE" \
    -v owner_password="$(cat "/db-secrets/$PG_OWNER.password")" -v runtime_password="$(cat "/db-secrets/$PG_RUNTIME.password")" <<'SQL'
CREATE ROLE :"owner" LOGIN PASSWORD :'owner_password';
CREATE ROLE :"runtime" LOGIN PASSWORD :'runtime_password';
CREATE DATABASE :"database" OWNER :"owner";
\c :"database"
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
  as_postgres "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
  echo "postgres: created $PG_DATABASE with roles $PG_OWNER and $PG_RUNTIME"
fi

exec setpriv --reuid=postgres --regid=postgres --init-groups "$bin/postgres" -D "$data" -k "$run" \
  -c listen_addresses='*' -c ssl=on -c ssl_cert_file="$tls/server.pem" -c ssl_key_file="$tls/server-key.pem" \
  -c ssl_min_protocol_version=TLSv1.3 -c password_encryption=scram-sha-256
