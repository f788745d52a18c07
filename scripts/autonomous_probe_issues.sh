#!/usr/bin/env bash
# Probe of issue recording through the Supervisor API only (no git).
#
# Starts its own `autopack serve` on an embedded SQLite database, creates a run of
# 2 tiers and 3 phases, records a minor issue in one phase, a major one in another and
# repeats the minor one in a third, then checks the phase issue files, the run issue
# index and the project backlog (files and API), and that bad input is refused.
#
# Environment: as scripts/autonomous_probe_run_state.sh.
set -euo pipefail

# shellcheck source=lib/probe.sh
source "$(dirname "$0")/lib/probe.sh"
project="probe-project-$$"

echo "1. create a run"
call POST /runs/start "$(cat <<JSON
{"run": {"run_id": "$run_id", "project_id": "$project"},
 "tiers": [{"tier_id": "T1", "tier_index": 0, "name": "Storage"},
           {"tier_id": "T2", "tier_index": 1, "name": "API"}],
 "phases": [{"phase_id": "P1", "phase_index": 0, "tier_id": "T1", "name": "Model"},
            {"phase_id": "P2", "phase_index": 1, "tier_id": "T1", "name": "Migrations"},
            {"phase_id": "P3", "phase_index": 2, "tier_id": "T2", "name": "Endpoints"}]}
JSON
)"
expect "POST /runs/start status" "$code" 201

record() {  # PHASE KEY SEVERITY EVIDENCE
  call POST "/runs/$run_id/phases/$1/record_issue" \
    "{\"issue_key\": \"$2\", \"severity\": \"$3\", \"source\": \"ci\", \"category\": \"test_failure\", \"evidence_refs\": [\"$4\"]}"
  [ "$code" = 200 ] || fail "record $2 in $1: HTTP $code $body"
}

echo "2. record a minor issue, a major one, and the minor one again elsewhere"
record P1 "ci_test_failure__tests.test_model.py::test_roundtrip" minor "tests/test_model.py::test_roundtrip"
record P2 "schema_contract_change__todo" major "migrations/0002.py"
record P3 "ci_test_failure__tests.test_model.py::test_roundtrip" minor "logs/ci-p3.txt"
expect "repeat occurrence_count" "$(jq -r .occurrence_count <<<"$body")" 2
expect "repeat is not new" "$(jq -r .new_in_run <<<"$body")" false
expect "run minor count (distinct keys)" "$(jq -r .run.minor_issue_count <<<"$body")" 1
expect "run major count" "$(jq -r .run.major_issue_count <<<"$body")" 1

echo "3. phase issue files"
issues="$AUTOPACK_RUNS_DIR/$run_id/issues"
expect "P1 issue_state" "$(jq -r .issue_state "$issues/phase_00_P1_issues.json")" has_minor_issues
expect "P2 issue_state" "$(jq -r .issue_state "$issues/phase_01_P2_issues.json")" has_major_issues
expect "P3 occurrences of the repeat" "$(jq -r '.issues[0].occurrence_count' "$issues/phase_02_P3_issues.json")" 1
expect "P3 first_seen_run" "$(jq -r '.issues[0].first_seen_run' "$issues/phase_02_P3_issues.json")" "$run_id"

echo "4. run issue index"
index="$issues/run_issue_index.json"
key="ci_test_failure__tests.test_model.py::test_roundtrip"
expect "keys in index" "$(jq -r '.issues_by_key | length' "$index")" 2
expect "seen_in_phases" "$(jq -c --arg k "$key" '.issues_by_key[$k].seen_in_phases' "$index")" '["P1","P3"]'
expect "seen_in_tiers" "$(jq -c --arg k "$key" '.issues_by_key[$k].seen_in_tiers' "$index")" '["T1","T2"]'
expect "debt_status" "$(jq -r .debt_status "$index")" has_minor_issues
call GET "/runs/$run_id/issues/index"
same "API index equals the file" "$(jq -S . <<<"$body")" "$(jq -S . "$index")"

echo "5. project backlog"
backlog="$AUTOPACK_RUNS_DIR/project_issue_backlog.$project.json"
expect "backlog seen_in_tiers" "$(jq -r --arg k "$key" '.issues_by_key[$k].seen_in_tiers' "$backlog")" 2
expect "backlog occurrence_count" "$(jq -r --arg k "$key" '.issues_by_key[$k].occurrence_count' "$backlog")" 2
expect "backlog status" "$(jq -r --arg k "$key" '.issues_by_key[$k].status' "$backlog")" open
call GET "/project/issues/backlog?project_id=$project"
same "API backlog equals the file" "$(jq -S . <<<"$body")" "$(jq -S . "$backlog")"
expect "autopack report backlog" "$("$AUTOPACK" report backlog --json --project "$project" | jq -r '.issues[0].issue_key')" "$key"

echo "6. bad input is refused and creates nothing"
call POST "/runs/$run_id/phases/P1/record_issue" '{"issue_key": "k", "severity": "dire", "source": "ci", "category": "c"}'
expect "unknown severity" "$code" 422
call POST "/runs/ghost/phases/P1/record_issue" '{"issue_key": "k", "severity": "minor", "source": "ci", "category": "c"}'
expect "unknown run" "$code" 404
[ ! -e "$AUTOPACK_RUNS_DIR/ghost" ] || fail "a folder was created for an unknown run"
ok "no folder for the unknown run"

echo "PROBE PASSED: issues of run $run_id recorded, counted once, and written (under $issues)"
