#!/bin/bash
# The smoke test's client (compose.yaml, service `smoke`), run inside the cluster's network by deploy/compose/smoke.sh:
#   wait            until every silo's /readyz answers 200
#   user            the bootstrap admin creates a user and an API key (kept in the smoke volume)
#   complete N      N completions, alternating between the two API silos; 503s are retried, as clients should
#   tokens SILO     the completion tokens a worker has generated, from its metrics port
set -euo pipefail
ca=/secrets/internal-ca.pem
silos=(api-1 api-2 worker-1 worker-2)
call() { curl -sS --cacert "$ca" -H "Authorization: Bearer $1" -H 'Content-Type: application/json' "${@:2}"; }

case "$1" in
  wait)
    for silo in "${silos[@]}"; do
      status=
      for _ in $(seq 1 300); do
        status=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$ca" "https://$silo:8443/readyz" || true)
        [[ "$status" == 200 ]] && break
        sleep 1
      done
      [[ "$status" == 200 ]] || { echo "FAIL: $silo is not ready (status $status)"; exit 1; }
    done
    echo "ok: ${silos[*]} ready"
    ;;
  user)
    admin=$(cat /api-1/admin-api-key)
    user="smoke-$(date +%s)"
    call "$admin" --fail-with-body "https://api-1:8443/admin/users" -d "{\"id\":\"$user\",\"roles\":[\"user\"]}" >/dev/null
    call "$admin" --fail-with-body -X POST "https://api-2:8443/admin/users/$user/api-keys" -d '{"label":"smoke"}' \
      | sed -n 's/.*"api_key":"\([^"]*\)".*/\1/p' >/smoke/api-key
    [[ -s /smoke/api-key ]] || { echo "FAIL: no API key issued"; exit 1; }
    echo "ok: user $user and a key, created through api-1 and api-2"
    ;;
  complete)
    key=$(cat /smoke/api-key)
    started=$(date +%s%N) retried=0
    for i in $(seq 1 "$2"); do
      api=api-$((i % 2 + 1)) status=
      for _ in $(seq 1 120); do
        status=$(call "$key" -o /smoke/answer -w '%{http_code}' "https://$api:8443/v1/completions" \
          -d '{"model":"bastion-tiny-gpt2","prompt":"Hello","max_tokens":8}' || true)
        [[ "$status" == 503 || "$status" == 000 ]] || break
        retried=$((retried + 1))
        sleep 1
      done
      grep -q '"completion_tokens":8' /smoke/answer || { echo "FAIL: completion $i through $api: $status $(cat /smoke/answer)"; exit 1; }
    done
    echo "ok: $2 completions through api-1 and api-2 in $(( ($(date +%s%N) - started) / 1000000 )) ms, $retried retries after 503"
    ;;
  tokens)
    curl -s "http://$2:9464/metrics" | awk '/^bastion_completion_tokens_total/ { sum += $NF } END { print sum + 0 }'
    ;;
  *)
    echo "usage: smoke-client.sh wait | user | complete N | tokens SILO" >&2
    exit 2
    ;;
esac
