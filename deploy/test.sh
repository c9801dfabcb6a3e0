#!/usr/bin/env bash
# Builds the silo image from this checkout with podman, from base images made of Debian packages (no registry needed),
# then checks it: no secrets or local state in any layer, a numeric non-root user, and, with a read-only root
# filesystem, a silo that serves a completion. Then it runs the compose cluster's smoke test (deploy/compose/smoke.sh).
# Not part of .ci/run (minutes of image building); see deploy/container/README.md and deploy/compose/README.md.
# Run as root on a Debian 12 machine.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${BASTION_CT_WORK:-/tmp/bastion-container-test}
mkdir -p "$work"
export CONTAINERS_CONF="$PWD/deploy/container/containers.conf"

for tool in podman mmdebstrap runc docker-compose; do
  command -v "$tool" >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman buildah mmdebstrap runc uidmap docker-compose >/dev/null; break; }
done

# Base images from Debian packages: the runtime libraries, and the same plus this machine's .NET SDK for the build stage.
runtime_packages=ca-certificates,libssl3,zlib1g,libstdc++6,libgcc-s1
if ! podman image exists localhost/bastion/runtime-deps:bookworm; then
  mmdebstrap --variant=essential --include="$runtime_packages" bookworm "$work/runtime.tar"
  podman import "$work/runtime.tar" localhost/bastion/runtime-deps:bookworm
fi
if ! podman image exists localhost/bastion/sdk:10.0; then
  dotnet_root=$(dirname "$(readlink -f "$(command -v dotnet)")")
  mmdebstrap --variant=essential --include="$runtime_packages,libicu72" \
    --customize-hook="mkdir -p \"\$1/usr/share/dotnet\" && cp -a '$dotnet_root'/. \"\$1/usr/share/dotnet/\" && ln -sf /usr/share/dotnet/dotnet \"\$1/usr/bin/dotnet\"" \
    bookworm "$work/sdk.tar"
  podman import "$work/sdk.tar" localhost/bastion/sdk:10.0
fi
# Debian's minbase (essential + apt) stands in for debian:bookworm-slim, the compose tools image's base.
if ! podman image exists localhost/bastion/debian:bookworm; then
  mmdebstrap --variant=minbase bookworm "$work/debian.tar"
  podman import "$work/debian.tar" localhost/bastion/debian:bookworm
fi

# The build restores from this machine's package cache first, so it needs the network only for what the cache lacks,
# and trusts what this machine trusts (a package mirror may sit behind a proxy with its own root CA).
mkdir -p "$HOME/.nuget/packages"
podman build --network host -f deploy/container/Containerfile -v /etc/ssl/certs:/etc/ssl/certs:ro \
  --build-arg SDK_IMAGE=localhost/bastion/sdk:10.0 --build-arg RUNTIME_IMAGE=localhost/bastion/runtime-deps:bookworm \
  --build-arg NUGET_CERT_REVOCATION_MODE="${NUGET_CERT_REVOCATION_MODE:-online}" \
  -v "$HOME/.nuget/packages:/root/.nuget/packages" -t localhost/bastion/silo:test .
podman build --network host -f deploy/container/Containerfile.cli -v /etc/ssl/certs:/etc/ssl/certs:ro \
  --build-arg SDK_IMAGE=localhost/bastion/sdk:10.0 --build-arg RUNTIME_IMAGE=localhost/bastion/runtime-deps:bookworm \
  --build-arg NUGET_CERT_REVOCATION_MODE="${NUGET_CERT_REVOCATION_MODE:-online}" \
  -v "$HOME/.nuget/packages:/root/.nuget/packages" -t localhost/bastion/cli:test .

for image in silo cli; do
  echo "== the $image image: user and layers"
  user=$(podman image inspect "localhost/bastion/$image:test" --format '{{.Config.User}}')
  [[ "$user" == "10001:10001" ]] || { echo "FAIL: the $image image runs as '$user', not 10001:10001"; exit 1; }
  rm -rf "$work/layers" "$work/image.tar" && mkdir -p "$work/layers"
  podman save --format docker-archive -o "$work/image.tar" "localhost/bastion/$image:test"
  tar -xf "$work/image.tar" -C "$work/layers"
  listing=$(find "$work/layers" -name '*.tar' -exec tar -tf {} \; 2>/dev/null)
  for forbidden in '\.bastion/' 'admin-api-key' 'keyring' '\.git/' 'node_modules/' 'cluster\.env' '\.pfx$' '-key\.pem$'; do
    if grep -E -- "$forbidden" <<<"$listing" | grep -q .; then
      echo "FAIL: a layer of the $image image holds $forbidden:"; grep -E -- "$forbidden" <<<"$listing" | head; exit 1
    fi
  done
  echo "ok: user 10001:10001, no local state, keys or secrets in $(find "$work/layers" -name '*.tar' | wc -l) layers"
done
help=$(podman run --rm --read-only --network none localhost/bastion/cli:test --help)
grep -q 'Operate a Bastion cluster' <<<"$help" || { echo "FAIL: the CLI image does not run: $help"; exit 1; }
echo "ok: the CLI runs as uid 10001 with a read-only root"

echo "== a silo from the image: read-only root, against PostgreSQL on this machine"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pg="$work/pg" port=${BASTION_CT_PG_PORT:-55432}
rm -rf "$pg" "$work/data" && mkdir -p "$pg" "$work/data" && chown postgres "$pg" && chown 10001:10001 "$work/data"
su postgres -s /bin/sh -c "$pgbin/initdb -D $pg/data -A trust -U postgres >/dev/null && $pgbin/pg_ctl -D $pg/data -o '-k $pg -p $port -c listen_addresses=127.0.0.1' -l $pg/log -w start >/dev/null"
cleanup() {
  podman rm -f bastion-silo-test >/dev/null 2>&1 || true
  su postgres -s /bin/sh -c "$pgbin/pg_ctl -D $pg/data -m fast stop" >/dev/null 2>&1 || true
}
trap cleanup EXIT
sql() { "$pgbin/psql" -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 -q -c "$1"; }
for role in bastion_owner bastion_runtime bastion_keys_owner bastion_keys_runtime; do sql "CREATE ROLE $role LOGIN"; done
sql "CREATE DATABASE bastion OWNER bastion_owner" && sql "CREATE DATABASE bastion_keys OWNER bastion_keys_owner"
cs() { echo "Host=127.0.0.1;Port=$port;Database=$1;Username=$2"; }

# Development: the node makes its own keyring, HTTPS certificate and admin key in /data (production takes them from
# Key Vault and files, deploy/README.md); the databases are the external ones.
run=(podman run --network host --read-only --tmpfs /tmp -e DOTNET_ENVIRONMENT=Development)
"${run[@]}" --rm -e ConnectionStrings__BastionOwner="$(cs bastion bastion_owner)" \
  -e ConnectionStrings__BastionKeysOwner="$(cs bastion_keys bastion_keys_owner)" localhost/bastion/silo:test migrate
"${run[@]}" -d --name bastion-silo-test -v "$work/data:/data" \
  -e ConnectionStrings__Bastion="$(cs bastion bastion_runtime)" -e ConnectionStrings__BastionKeys="$(cs bastion_keys bastion_keys_runtime)" \
  localhost/bastion/silo:test >/dev/null
url=
for _ in $(seq 1 180); do
  url=$(podman logs bastion-silo-test 2>/dev/null | sed -n 's/^BASTION_URL=//p' | tail -n 1)
  [[ -n "$url" ]] && break
  sleep 1
done
[[ -n "$url" ]] || { echo "FAIL: the silo did not start"; podman logs bastion-silo-test | tail -n 30; exit 1; }
ca="$work/data/tls/ca.pem" admin=$(cat "$work/data/admin-api-key")
api() { curl -sS --fail-with-body --cacert "$ca" -H "Authorization: Bearer $1" -H 'Content-Type: application/json' "${@:2}"; }
api "$admin" "$url/admin/users" -d '{"id":"container-smoke","roles":["user"]}' >/dev/null
key=$(api "$admin" -X POST "$url/admin/users/container-smoke/api-keys" -d '{"label":"smoke"}' | sed -n 's/.*"api_key":"\([^"]*\)".*/\1/p')
completion=$(api "$key" "$url/v1/completions" -d '{"model":"bastion-tiny-gpt2","prompt":"Hello","max_tokens":4}')
grep -q '"completion_tokens":4' <<<"$completion" || { echo "FAIL: no completion: $completion"; exit 1; }
echo "ok: migrate, then a silo as uid 10001 with a read-only root served a completion: $completion"

echo "== the compose cluster: two databases, init, keyring, migrate, 2 API and 2 worker silos; kill a worker"
podman build --network host -f deploy/compose/tools.Containerfile --build-arg BASE_IMAGE=localhost/bastion/debian:bookworm \
  -t localhost/bastion/tools:bookworm deploy/compose
# docker-compose talks to podman's Docker-compatible API. Podman runs health checks from systemd timers, and these
# machines have no systemd, so a loop here runs them instead (compose waits for the databases to be healthy).
socket=$work/podman.sock
podman system service --time=0 "unix://$socket" &
service=$!
(while sleep 2; do for id in $(podman ps -q); do podman healthcheck run "$id" >/dev/null 2>&1 || true; done; done) &
health=$!
trap 'kill $service $health 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 1 30); do [[ -S "$socket" ]] && break; sleep 1; done
DOCKER_HOST="unix://$socket" COMPOSE=docker-compose BASTION_IMAGE=localhost/bastion/silo:test deploy/compose/smoke.sh
