#!/bin/bash
# The compose cluster's init step (compose.yaml, service `init`): issues every certificate and password the cluster
# needs, once, into two volumes. Runs as root in the tools image; idempotent: a volume already initialised is left as
# it is. The commands are those of docs/cluster-tls.md; production CAs live elsewhere (deploy/README.md).
#   /ca          the CAs' private keys: mounted only here, kept for issuing more certificates later
#   /secrets     what silos read (uid 10001): CA certificates, each silo's certificates, the runtime roles' pgpass
#   /db-secrets  what the database servers and `migrate` read: server certificates, role passwords, the owners' pgpass
set -euo pipefail
umask 077
silos=${BASTION_SILOS:-api-1 api-2 worker-1 worker-2}
clients=${BASTION_CLIENTS:-backend}
uid=10001

if [[ -f /secrets/.initialised ]]; then
  echo "init: the secrets volume is initialised already; nothing issued"
  exit 0
fi

ca() { # name, subject
  [[ -f "/ca/$1-key.pem" ]] && return
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1825 -keyout "/ca/$1-key.pem" -out "/ca/$1.pem" \
    -subj "/CN=$2" -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
issue() { # ca, output prefix, subject, extensions
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$2-key.pem" -out "$2.csr" -subj "/CN=$3" 2>/dev/null
  openssl x509 -req -in "$2.csr" -CA "/ca/$1.pem" -CAkey "/ca/$1-key.pem" -CAcreateserial -days 365 -out "$2.pem" \
    -extfile <(printf '%s\nkeyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n' "$4") 2>/dev/null
  rm "$2.csr"
}

# Two CAs: the cluster's (silo and gateway mutual TLS, nothing else) and an internal one (the HTTPS edge, PostgreSQL).
ca cluster "Bastion Compose Cluster CA"
ca internal "Bastion Compose Internal CA"
cp /ca/cluster.pem /secrets/cluster-ca.pem
cp /ca/internal.pem /secrets/internal-ca.pem

for silo in $silos; do
  mkdir -p "/secrets/$silo"
  issue cluster "/secrets/$silo/cluster" bastion-silo $'subjectAltName=URI:urn:bastion:silo\nextendedKeyUsage=serverAuth,clientAuth'
  issue internal "/secrets/$silo/https" "$silo" "subjectAltName=DNS:$silo,DNS:localhost,IP:127.0.0.1"$'\nextendedKeyUsage=serverAuth'
done
for client in $clients; do
  mkdir -p /secrets/clients
  issue cluster "/secrets/clients/$client" "bastion-client-$client" "subjectAltName=URI:urn:bastion:client:$client"$'\nextendedKeyUsage=clientAuth'
done

# Each database server: a certificate naming its host, and an owner and a runtime role with random passwords.
runtime_pgpass= owner_pgpass=
for server in pg-state:bastion:bastion_owner:bastion_runtime pg-keys:bastion_keys:bastion_keys_owner:bastion_keys_runtime; do
  IFS=: read -r host database owner runtime <<<"$server"
  issue internal "/db-secrets/$host" "$host" "subjectAltName=DNS:$host"$'\nextendedKeyUsage=serverAuth'
  for role in "$owner" "$runtime"; do openssl rand -hex 32 >"/db-secrets/$role.password"; done
  owner_pgpass+="$host:5432:$database:$owner:$(cat "/db-secrets/$owner.password")"$'\n'
  runtime_pgpass+="$host:5432:$database:$runtime:$(cat "/db-secrets/$runtime.password")"$'\n'
done
printf '%s' "$runtime_pgpass" >/secrets/runtime.pgpass
printf '%s' "$owner_pgpass" >/db-secrets/owner.pgpass

# Silos (and migrate, for the owners' pgpass) run as uid 10001; the keyring step writes keyring.json into /secrets.
chown -R "$uid:$uid" /secrets /db-secrets/owner.pgpass
chmod 700 /secrets
touch /secrets/.initialised
echo "init: issued certificates for $silos, clients $clients, and passwords for both database servers"
