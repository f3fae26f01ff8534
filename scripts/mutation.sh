#!/usr/bin/env bash
# Mutation testing of one module of the judging core with the tests that cover it (issue 13).
#
#   scripts/mutation.sh bnconform/checks/momentum.py
#
# Tool: cosmic-ray (maintained; mutates one module per session and runs any test command, so a
# module is tested with only its covering tests; @check-decorated functions are mutated too).
# It mutates files in place, so it runs on a copy of the committed tree (git archive HEAD),
# never on the shared working tree. The test command uses this project's Python (torch and
# the test extras); cosmic-ray itself may live elsewhere: COSMIC_RAY=/path/to/cosmic-ray.
# The session database lands in build/mutation/ (ignored); scripts/mutation-summary.py writes
# each session to its committed ledger (docs/mutation-ledger/) and the summary. MUTATION_RESUME=1
# keeps the finished mutants of the local session, or else of the ledger, while the module is
# unchanged since (after an edit, scripts/mutation_migrate.py moves the ledger to the new source).
set -euo pipefail

module="${1:?usage: scripts/mutation.sh MODULE (one listed in scripts/mutation-targets.txt)}"
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PROJECT_PYTHON:-$root/.venv/bin/python}"
cosmic_ray="${COSMIC_RAY:-cosmic-ray}"
timeout_s="${MUTANT_TIMEOUT_S:-300}"

tests="$(awk -F'\t' -v m="$module" '$1 == m {print $2}' "$root/scripts/mutation-targets.txt")"
if [[ -z "$tests" ]]; then
    echo "mutation.sh: $module is not in scripts/mutation-targets.txt (add it with its covering tests)" >&2
    exit 2
fi

out="$root/build/mutation"
mkdir -p "$out"
name="$(echo "$module" | tr '/.' '__')"
work="$(mktemp -d "${TMPDIR:-/tmp}/bnconform-mutation.XXXXXX")"
trap 'rm -rf "$work"' EXIT
git -C "$root" archive HEAD | tar -x -C "$work"
cp "$root/scripts/mutation_runner.py" "$root/scripts/mutation_ledger.py" "$work/scripts/"  # as checked out, even uncommitted
cd "$work"

# The copy's bnconform, not the editable install's: python -m pytest puts the copy first on sys.path.
(cd "$work" && "$python" -c "import bnconform, sys; sys.exit(not bnconform.__file__.startswith('$work'))") || {
    echo "mutation.sh: the tests would import bnconform from outside the copy" >&2; exit 3; }

cat > "$work/mutation.toml" <<TOML
[cosmic-ray]
module-path = "$module"
timeout = $timeout_s
excluded-modules = []
test-command = "$python scripts/mutation_runner.py run"

[cosmic-ray.distributor]
name = "local"
TOML

# The fork server (scripts/mutation_runner.py): torch imported once, each mutant's covering tests
# chosen by line coverage measured on the unmutated module.
key="$( (git -C "$root" rev-parse HEAD:bnconform HEAD:tests; echo "$tests") | sha1sum | cut -c1-16)"
MUTATION_COVERAGE_CACHE="$out/coverage-$key.json" MUTATION_HISTORY="$out" \
    "$python" scripts/mutation_runner.py serve "$module" $tests > "$out/$name.runner.log" 2>&1 &
runner=$!
trap 'kill $runner 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 600); do
    [[ -S .mutation-runner.sock ]] && break
    kill -0 $runner 2>/dev/null || { echo "mutation.sh: the runner stopped:" >&2; cat "$out/$name.runner.log" >&2; exit 3; }
    sleep 1
done
cat "$out/$name.runner.log"

session="$out/$name.sqlite"
ledger="$root/docs/mutation-ledger/$name.tsv"
ledger_commit="$( [[ -f "$ledger" ]] && sed -n 's/^# commit: //p' "$ledger" || true)"
ledger_source="$( [[ -f "$ledger" ]] && sed -n 's/^# source: //p' "$ledger" || true)"
unchanged_since() { [[ -n "$1" ]] && git -C "$root" diff --quiet "$1" HEAD -- "$module" 2>/dev/null; }
# A migrated ledger (scripts/mutation_migrate.py) names the module's source itself, not a commit.
ledger_is_current() {
    if [[ -n "$ledger_source" ]]; then
        [[ "$ledger_source" == "$(git -C "$root" rev-parse "HEAD:$module" 2>/dev/null)" ]]
    else
        unchanged_since "$ledger_commit"
    fi
}
if [[ "${MUTATION_RESUME:-}" == 1 && -f "$session" ]] && unchanged_since "$(cat "$out/$name.commit")"; then
    echo "mutation.sh: resuming $session (the module is unchanged since; its finished mutants are kept)"
else
    rm -f "$session"
    "$cosmic_ray" init mutation.toml "$session"
    git -C "$root" rev-parse HEAD > "$out/$name.commit"
    if [[ "${MUTATION_RESUME:-}" == 1 && -z "$ledger_source" ]] && ledger_is_current; then
        echo "$ledger_commit" > "$out/$name.commit"  # the ledger's session goes on
    fi
fi
if [[ "${MUTATION_RESUME:-}" == 1 ]]; then
    # The committed ledger's outcomes (another checkout, an earlier sitting) while the module is
    # unchanged since, and the mutants recorded as equivalent left unrun: cosmic-ray's own
    # interpreter (the one its script runs with) writes them into the session. A run without
    # MUTATION_RESUME runs every mutant: one recorded as equivalent that is killed shows a wrong record.
    if [[ -f "$ledger" ]] && ! ledger_is_current; then
        echo "mutation.sh: $module changed since its ledger: every mutant runs" \
             "(scripts/mutation_migrate.py carries the outcomes of unchanged definitions)"
        ledger=""
    fi
    cosmic_python="$(head -n1 "$(command -v "$cosmic_ray")" | sed 's/^#! *//')"
    "$cosmic_python" "$root/scripts/mutation_ledger.py" resume "$session" "$ledger" "$root/scripts/mutation-equivalent.txt"
fi
"$cosmic_ray" baseline mutation.toml   # the tests must pass unmutated, or every mutant looks killed
"$cosmic_ray" exec mutation.toml "$session"
"${cosmic_ray%cosmic-ray}cr-report" "$session" | tail -n 3
