#!/usr/bin/env bash
# Probe of the run/tier/phase state machine through the Supervisor API only (no git).
#
# Starts its own `autopack serve` on an embedded SQLite database in a temporary folder,
# creates a run with 2 tiers and 3 phases, checks the DB rows and the file layout, walks
# every phase through the state machine, checks that illegal moves are refused, and
# validates the final state. Exits 0 when every check holds.
#
# Environment: AUTOPACK_PROBE_DIR (work folder, default a new temp dir),
# AUTOPACK_PROBE_KEEP=1 (keep the folder afterwards), AUTOPACK (the command, default
# `autopack` on PATH).
set -euo pipefail

# shellcheck source=lib/probe.sh
source "$(dirname "$0")/lib/probe.sh"

echo "1. create a run with 2 tiers and 3 phases"
call POST /runs/start "$(cat <<JSON
{"run": {"run_id": "$run_id", "safety_profile": "normal", "run_scope": "multi_tier"},
 "tiers": [{"tier_id": "T1", "tier_index": 0, "name": "Storage"},
           {"tier_id": "T2", "tier_index": 1, "name": "API surface"}],
 "phases": [{"phase_id": "P1.1", "phase_index": 0, "tier_id": "T1", "name": "Add the model",
             "task_category": "schema_change", "complexity": "high"},
            {"phase_id": "P1.2", "phase_index": 1, "tier_id": "T1", "name": "Add tests",
             "task_category": "tests", "complexity": "low"},
            {"phase_id": "P2.1", "phase_index": 2, "tier_id": "T2", "name": "Add endpoints"}]}
JSON
)"
expect "POST /runs/start status" "$code" 201
expect "run state" "$(jq -r .state <<<"$body")" PHASE_QUEUEING

echo "2. DB rows exist"
expect "runs rows" "$(sqlite3 "$db" "select count(*) from runs where run_id='$run_id'")" 1
expect "tiers rows" "$(sqlite3 "$db" "select count(*) from tiers where run_id='$run_id'")" 2
expect "phases rows" "$(sqlite3 "$db" "select count(*) from phases where run_id='$run_id' and state='QUEUED'")" 3

echo "3. file layout exists"
root="$AUTOPACK_RUNS_DIR/$run_id"
for f in run_summary.md tiers/tier_00_storage.md tiers/tier_01_api_surface.md \
         phases/phase_00_P1.1.md phases/phase_01_P1.2.md phases/phase_02_P2.1.md; do
  [ -f "$root/$f" ] || fail "missing $root/$f"; ok "$f"
done
[ -d "$root/issues" ] || fail "missing issues/"; ok "issues/"

echo "4. an illegal move is refused"
call POST "/runs/$run_id/phases/P1.1/update_status" '{"state": "COMPLETE"}'
expect "QUEUED -> COMPLETE status" "$code" 409
expect "allowed moves" "$(jq -c .allowed <<<"$body")" '["EXECUTING","FAILED","SKIPPED"]'

echo "5. walk every phase through the state machine"
tokens=0
for phase in P1.1 P1.2 P2.1; do
  for state in EXECUTING GATE CI_RUNNING COMPLETE; do
    tokens=$((tokens + 100))
    call POST "/runs/$run_id/phases/$phase/update_status" \
      "{\"state\": \"$state\", \"builder_attempts\": 1, \"tokens_used\": $((tokens % 400 + 100))}"
    [ "$code" = 200 ] || fail "$phase -> $state: HTTP $code $body"
  done
  ok "$phase COMPLETE (tier $(jq -r .tier_state <<<"$body"), run $(jq -r .run_state <<<"$body"))"
done

echo "6. final state"
call GET "/runs/$run_id"
expect "run state" "$(jq -r .state <<<"$body")" DONE_SUCCESS
expect "tier states" "$(jq -r '[.tiers[].state] | join(",")' <<<"$body")" COMPLETE,COMPLETE
expect "phase states" "$(jq -r '[.phases[].state] | join(",")' <<<"$body")" COMPLETE,COMPLETE,COMPLETE
expect "run tokens = sum of phases" "$(jq -r '.tokens_used == ([.phases[].tokens_used] | add)' <<<"$body")" true
expect "DB run state" "$(sqlite3 "$db" "select state from runs where run_id='$run_id'")" DONE_SUCCESS
expect "run events" "$(sqlite3 "$db" "select count(*) from events where run_id='$run_id' and entity='run'")" 16
grep -q '| state | `DONE_SUCCESS` |' "$root/run_summary.md" || fail "run_summary.md is not DONE_SUCCESS"
ok "run_summary.md says DONE_SUCCESS"
expect "autopack status --json" "$("$AUTOPACK" status "$run_id" --json | jq -r .state)" DONE_SUCCESS

echo "7. a terminal run refuses every change"
call POST "/runs/$run_id/phases/P2.1/update_status" '{"state": "EXECUTING"}'
expect "change in terminal run status" "$code" 409

echo "PROBE PASSED: run $run_id walked to DONE_SUCCESS (artefacts under $root)"
