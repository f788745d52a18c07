#!/usr/bin/env bash
# Probe of the StrategyEngine through the CLI and the API (no git, no run started).
#
# Writes a temporary ruleset that makes `bulk_operation` work high-risk with its own caps
# and auditor profile, and a plan with one such phase and one docs phase; compiles it with
# `autopack strategy dry-run` and with POST /strategy/dry_run, and asserts the compiled
# strategy: complexity high, strict CI, few attempts, the auditor profile, no auto-apply
# — and that a bad ruleset is refused naming the file and the JSON path.
#
# Environment: as scripts/autonomous_probe_run_state.sh.
set -euo pipefail

# shellcheck source=lib/probe.sh
source "$(dirname "$0")/lib/probe.sh"

echo "1. a ruleset with a high-risk category, and a plan"
cat >"$work/project_ruleset_v3.json" <<'JSON'
{"version": 3,
 "categories": {"bulk_operation": {"high_risk": true, "max_builder_attempts": 1,
                                   "incident_token_cap": 80000,
                                   "auditor_profile": "orchestrator_review"}},
 "classification": [{"keywords": ["vendor upgrade"], "task_category": "bulk_operation"}]}
JSON
cat >"$work/plan.json" <<JSON
{"run": {"run_id": "$run_id"},
 "tiers": [{"tier_id": "T1", "tier_index": 0, "name": "Upgrade"}],
 "phases": [{"phase_id": "P1", "phase_index": 0, "tier_id": "T1",
             "name": "Vendor upgrade of every package", "complexity": "low"},
            {"phase_id": "P2", "phase_index": 1, "tier_id": "T1", "name": "Document it",
             "task_category": "docs"}]}
JSON
ok "wrote $work/project_ruleset_v3.json and $work/plan.json"

echo "2. autopack strategy dry-run"
"$AUTOPACK" strategy dry-run --plan "$work/plan.json" --ruleset "$work/project_ruleset_v3.json" \
  --json >"$work/strategy.json" || fail "dry-run exited $?"
s() { jq -r "$1" "$work/strategy.json"; }
expect "P1 task_category" "$(s '.phases[0].task_category')" bulk_operation
expect "P1 complexity (plan said low)" "$(s '.phases[0].complexity')" high
expect "P1 ci_profile" "$(s '.phases[0].ci_profile')" strict
expect "P1 max_builder_attempts" "$(s '.phases[0].max_builder_attempts')" 1
expect "P1 incident_token_cap" "$(s '.phases[0].incident_token_cap')" 80000
expect "P1 auditor_profile" "$(s '.phases[0].auditor_profile')" orchestrator_review
expect "P1 auto_apply" "$(s '.phases[0].auto_apply')" false
expect "P1 reason for attempts" \
  "$(s '.phases[0].reasons[] | select(.field == "max_builder_attempts") | .source')" \
  'ruleset $.categories.bulk_operation.max_builder_attempts'
expect "P2 ci_profile" "$(s '.phases[1].ci_profile')" normal
expect "P2 auto_apply" "$(s '.phases[1].auto_apply')" true
expect "strategy version" "$(s '.version')" 3
[ ! -e "$AUTOPACK_RUNS_DIR/$run_id" ] || fail "a dry run wrote a run folder"
ok "no run folder was written"

echo "3. the same through POST /strategy/dry_run"
call POST /strategy/dry_run "{\"plan\": $(cat "$work/plan.json"), \"ruleset\": $(cat "$work/project_ruleset_v3.json")}"
expect "POST /strategy/dry_run status" "$code" 200
api_phases=$(jq -cS '.phases' <<<"$body")
cli_phases=$(jq -cS '.phases' "$work/strategy.json")
same "API and CLI compile the same phases" "$api_phases" "$cli_phases"
call GET "/runs/$run_id"
expect "no run was started" "$code" 404

echo "4. bad rulesets are refused naming file and JSON path"
echo '{"categories": {"bulk_operation": {"max_builder_attempts": 0}}}' >"$work/bad.json"
err=$("$AUTOPACK" strategy dry-run --plan "$work/plan.json" --ruleset "$work/bad.json" 2>&1 >/dev/null) \
  && fail "a zero budget was accepted"
case "$err" in *"bad.json: \$.categories.bulk_operation.max_builder_attempts"*) ok "zero budget: $err";;
  *) fail "unexpected error: $err";; esac
printf '{"version": 1,\n "categories": {\n' >"$work/broken.json"
err=$("$AUTOPACK" strategy dry-run --plan "$work/plan.json" --ruleset "$work/broken.json" 2>&1 >/dev/null) \
  && fail "malformed JSON was accepted"
case "$err" in *"broken.json:3:"*"malformed JSON"*) ok "malformed: $err";;
  *) fail "unexpected error: $err";; esac
call POST /strategy/dry_run "{\"plan\": $(cat "$work/plan.json"), \"ruleset\": {\"categories\": {\"nonsense\": {}}}}"
expect "unknown category status" "$code" 422
expect "unknown category field" "$(jq -r '.field' <<<"$body")" 'ruleset: $.categories.nonsense'

echo "PROBE PASSED: strategy compiled as the ruleset says"
