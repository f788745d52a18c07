#!/usr/bin/env bash
# Probe of the promotion decision made from a run's artefacts alone (no database).
#
# 1. Walks tier-cleanliness combinations through `autopack promotion check RUN_DIR`:
#    run summaries written for each case, the exit code and reasons checked.
# 2. Does the same for a real run: created through the API, walked to DONE_SUCCESS, then
#    made not_clean by minor issues over its tier's tolerance.
#
# Environment: as scripts/autonomous_probe_run_state.sh.
set -euo pipefail

# shellcheck source=lib/probe.sh
source "$(dirname "$0")/lib/probe.sh"

summary() {  # DIR STATE DEBT T1_STATE T1_MINOR T2_MINOR T2_MAJOR T2_MAJOR_CAP T2_TOKENS
  mkdir -p "$1"
  jq -n --arg state "$2" --arg debt "$3" --arg t1 "$4" --argjson m1 "$5" --argjson m2 "$6" \
        --argjson j2 "$7" --argjson jcap "$8" --argjson tok "$9" '{
    run_id: "case", state: $state, failure_reason: null, debt_status: $debt,
    tokens_used: 110, token_cap: 1000, adoption_stage: 2,
    tiers: [
      {tier_id: "T1", state: $t1, tokens_used: 10, token_cap: 100, ci_runs_used: 1,
       ci_run_cap: 2, minor_issues_count: $m1, major_issues_count: 0,
       max_minor_issues_tolerated: 2, max_major_issues_tolerated: null},
      {tier_id: "T2", state: "COMPLETE", tokens_used: $tok, token_cap: 100, ci_runs_used: 2,
       ci_run_cap: 2, minor_issues_count: $m2, major_issues_count: $j2,
       max_minor_issues_tolerated: 2, max_major_issues_tolerated: $jcap}]}' \
    >"$1/run_summary.json"
}

check() {  # LABEL DIR EXPECTED_EXIT [EXPECTED_REASON]
  local rc=0 out
  out=$("$AUTOPACK" promotion check "$2" --json 2>/dev/null) || rc=$?
  expect "$1: exit" "$rc" "$3"
  if [ $# -ge 4 ]; then
    case "$(jq -r '.reasons | join("; ")' <<<"$out")" in *"$4"*) ok "$1: $4";;
      *) fail "$1: reasons $(jq -c .reasons <<<"$out") lack '$4'";; esac
  fi
}

echo "1. tier-cleanliness combinations"
c="$work/cases"
summary "$c/clean"          DONE_SUCCESS clean            COMPLETE 2 1 0 null 100
summary "$c/minor-debt"     DONE_SUCCESS has_minor_issues COMPLETE 1 1 0 null 50
summary "$c/t1-minors"      DONE_SUCCESS has_minor_issues COMPLETE 3 0 0 null 50
summary "$c/t2-major"       DONE_SUCCESS clean            COMPLETE 0 0 1 0 50
summary "$c/t2-major-ok"    DONE_SUCCESS clean            COMPLETE 0 0 1 null 50
summary "$c/t2-tokens"      DONE_SUCCESS clean            COMPLETE 0 0 0 null 101
summary "$c/t1-failed"      DONE_SUCCESS clean            FAILED 0 0 0 null 50
summary "$c/excess-debt"    DONE_SUCCESS excess_minor_issues COMPLETE 0 0 0 null 50
summary "$c/run-failed"     DONE_FAILED_BUILD_FAILURE clean COMPLETE 0 0 0 null 50
check "all clean" "$c/clean" 0
check "minor issues within tolerance" "$c/minor-debt" 0
check "T1 over its minor tolerance" "$c/t1-minors" 1 "tier T1 is not_clean: 3 minor issues, 2 tolerated"
check "T2 major in a safety-critical tier" "$c/t2-major" 1 "tier T2 is not_clean: 1 major issues, 0 tolerated"
check "T2 major in a normal tier" "$c/t2-major-ok" 0
check "T2 over its token cap" "$c/t2-tokens" 1 "tokens 101 over cap 100"
check "T1 failed" "$c/t1-failed" 1 "tier T1 is not_clean: tier failed"
check "excess minor-issue debt" "$c/excess-debt" 1 "debt_status is excess_minor_issues"
check "run not DONE_SUCCESS" "$c/run-failed" 1 "not DONE_SUCCESS"
mkdir -p "$c/empty"
check "no summary" "$c/empty" 2
echo '{"run_id": "x"' >"$c/empty/run_summary.json"
check "malformed summary" "$c/empty" 2

echo "2. a real run, from its artefacts"
call POST /runs/start "$(cat <<JSON
{"run": {"run_id": "$run_id"},
 "tiers": [{"tier_id": "T1", "tier_index": 0, "name": "Only"}],
 "phases": [{"phase_id": "P1", "phase_index": 0, "tier_id": "T1", "name": "Phase one"}]}
JSON
)"
expect "POST /runs/start" "$code" 201
for s in EXECUTING GATE CI_RUNNING; do
  call POST "/runs/$run_id/phases/P1/update_status" "{\"state\": \"$s\"}"
  expect "P1 -> $s" "$code" 200
done
for n in 1 2 3; do
  call POST "/runs/$run_id/phases/P1/record_issue" \
    "{\"issue_key\": \"lint_$n\", \"severity\": \"minor\", \"source\": \"static_check\", \"category\": \"lint\"}"
  expect "minor issue $n" "$code" 200
done
call POST "/runs/$run_id/phases/P1/update_status" '{"state": "COMPLETE"}'
expect "P1 -> COMPLETE" "$code" 200
run_dir="$AUTOPACK_RUNS_DIR/$run_id"
expect "run_summary.json state" "$(jq -r .state "$run_dir/run_summary.json")" DONE_SUCCESS
check "the real run (3 minors, 2 tolerated)" "$run_dir" 1 "tier T1 is not_clean: 3 minor issues, 2 tolerated"

echo "PROBE PASSED: promotion decisions from artefacts alone"
