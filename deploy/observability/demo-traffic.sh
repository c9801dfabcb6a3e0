#!/usr/bin/env bash
# Drives a few minutes of realistic traffic against a development silo, so that the dashboard
# (grafana-dashboard.json) and the preview page (dashboard-preview/) have something to show:
# several users' completions (some streamed), bad API keys (401), a user over a low request limit
# (429), admin actions (create, suspend/resume) and one user enumerating "account number 0001",
# "…0002", … (the anomaly detector's prompt-enumeration signal, which throttles that user).
#
#   export BASTION_URL=https://127.0.0.1:PORT BASTION_ADMIN_KEY_FILE=/path/admin-api-key
#   deploy/observability/demo-traffic.sh [seconds, default 360]
#
# Needs bash and curl. Talks TLS without verifying (curl -k): development only.
set -euo pipefail

: "${BASTION_URL:?set BASTION_URL (printed by the silo)}"
: "${BASTION_ADMIN_KEY_FILE:?set BASTION_ADMIN_KEY_FILE (printed by the silo)}"
DURATION=${1:-360}
ADMIN=$(cat "$BASTION_ADMIN_KEY_FILE")
RUN=$(date +%s)   # user ids are unique per run, so the script can be run again on the same node

api() { # method path [json] -> body on stdout
  local method=$1 path=$2 body=${3:-}
  if [[ -n $body ]]; then
    curl -sk -X "$method" "$BASTION_URL$path" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' -d "$body"
  else
    curl -sk -X "$method" "$BASTION_URL$path" -H "Authorization: Bearer $ADMIN"
  fi
}

new_user() { # id [role] -> api key on stdout
  api POST /admin/users "{\"id\":\"$1\",\"roles\":[\"${2:-user}\"]}" > /dev/null
  api POST "/admin/users/$1/api-keys" '{"label":"demo"}' | sed -n 's/.*"api_key":"\([^"]*\)".*/\1/p'
}

complete() { # key prompt max_tokens [stream] -> prints the HTTP status
  local stream=${4:-false}
  curl -sk -o /dev/null -w '%{http_code}\n' -N "$BASTION_URL/v1/completions" -H "Authorization: Bearer $1" \
    -H 'Content-Type: application/json' \
    -d "{\"model\":\"$MODEL\",\"prompt\":\"$2\",\"max_tokens\":$3,\"stream\":$stream}"
}

MODEL=$(api GET /v1/models | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | head -n1)
echo "model: $MODEL"

ALICE=$(new_user "alice-$RUN")
BOB=$(new_user "bob-$RUN")
CAROL=$(new_user "carol-$RUN" data-scientist)
MALLORY=$(new_user "mallory-$RUN")
DAVE=$(new_user "dave-$RUN")
[[ -n $ALICE && -n $BOB && -n $CAROL && -n $MALLORY && -n $DAVE ]] || { echo "could not create users" >&2; exit 1; }

# mallory gets 5 requests a minute, so her bursts meet 429s
api PUT "/admin/users/mallory-$RUN/limits" \
  '{"requests":{"algorithm":"fixed_window","limit":5,"window_seconds":60}}' > /dev/null

PROMPTS=("Hello" "Write a haiku about autumn" "Summarize the meeting notes" "Translate good morning to French"
         "What is an Orleans grain?" "List three prime numbers" "Explain TLS in one line" "Tell me a joke")
prompt() { echo "${PROMPTS[RANDOM % ${#PROMPTS[@]}]}"; }

start=$(date +%s); i=0; enumerated=false; bob=active
while (( $(date +%s) - start < DURATION )); do
  elapsed=$(( $(date +%s) - start )); i=$((i + 1))

  # everyday users: short completions, every third one streamed
  complete "$ALICE" "$(prompt)" 8 &
  complete "$BOB" "$(prompt)" 12 "$( (( i % 3 == 0 )) && echo true || echo false)" &
  if (( i % 2 == 0 )); then complete "$CAROL" "$(prompt)" 24 true & fi

  # a client with a wrong key (401s), a few a minute: well under the per-address limit
  if (( i % 4 == 0 )); then
    curl -sk -o /dev/null -w '%{http_code}\n' "$BASTION_URL/v1/models" -H "Authorization: Bearer bst_notarealkey$RANDOM" &
  fi

  # mallory bursts past her 5-a-minute limit (429s)
  if (( i % 5 == 0 )); then for _ in 1 2 3 4; do complete "$MALLORY" "$(prompt)" 4 & done; fi

  # a third of the way in: dave enumerates accounts (prompt-enumeration -> throttle)
  if ! $enumerated && (( elapsed > DURATION / 3 )); then
    enumerated=true
    echo "dave enumerates accounts" >&2
    for n in $(seq -w 1 30); do complete "$DAVE" "What is the balance of account number 00$n?" 2; done
  fi

  # admin work: a new user now and then, and bob suspended for a while (his requests get 401), then resumed
  if (( i % 25 == 0 )); then new_user "eve-$RUN-$i" > /dev/null; fi
  if [[ $bob == active ]] && (( elapsed > DURATION / 2 )); then
    bob=suspended; echo "suspending bob" >&2; api POST "/admin/users/bob-$RUN/suspend" > /dev/null
  elif [[ $bob == suspended ]] && (( elapsed > DURATION * 2 / 3 )); then
    bob=resumed; echo "resuming bob" >&2; api POST "/admin/users/bob-$RUN/resume" > /dev/null
  fi

  wait
  sleep 1
done | sort | uniq -c | sort -rn   # HTTP statuses, counted
echo "done" >&2
