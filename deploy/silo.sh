#!/usr/bin/env bash
# Starts one more Bastion silo process on this machine, joining the cluster described by an environment
# file (deploy/cluster.md explains what goes in it). Ports are picked free unless the file or the
# environment sets them.
#   usage: deploy/silo.sh [api|worker|both] [env-file]      (default: both, deploy/cluster.env)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
role="${1:-both}"
env_file="${2:-$here/cluster.env}"
case "$role" in
  api | worker) role_args=("--Bastion:Node:Roles:0=$role") ;;
  both) role_args=() ;;
  *) echo "usage: $0 [api|worker|both] [env-file]" >&2; exit 2 ;;
esac
if [[ ! -r "$env_file" ]]; then
  echo "silo.sh: cannot read $env_file (see deploy/cluster.md)" >&2
  exit 2
fi
# NAME=value lines, taken literally (no shell quoting or expansion, as systemd's EnvironmentFile and
# docker's --env-file read them): connection strings are full of ';', which a shell would split on.
while IFS= read -r line || [[ -n "$line" ]]; do
  [[ -z "${line//[[:space:]]/}" || "$line" =~ ^[[:space:]]*# ]] && continue
  if [[ ! "$line" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; then
    echo "silo.sh: $env_file: not a NAME=value line: ${line%%=*}" >&2
    exit 2
  fi
  export "$line"
done < "$env_file"
exec dotnet "$here/../Silo/bin/${CONFIGURATION:-Release}/net10.0/Bastion.Silo.dll" "${role_args[@]}"
