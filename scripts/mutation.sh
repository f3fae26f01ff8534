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
# The session database lands in build/mutation/ (ignored); scripts/mutation-summary.py turns
# the sessions into docs/mutation-summary.md.
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
git -C "$root" rev-parse HEAD > "$out/$name.commit"

# The copy's bnconform, not the editable install's: python -m pytest puts the copy first on sys.path.
(cd "$work" && "$python" -c "import bnconform, sys; sys.exit(not bnconform.__file__.startswith('$work'))") || {
    echo "mutation.sh: the tests would import bnconform from outside the copy" >&2; exit 3; }

cat > "$work/mutation.toml" <<TOML
[cosmic-ray]
module-path = "$module"
timeout = $timeout_s
excluded-modules = []
test-command = "$python -m pytest -x -q -p no:cacheprovider $tests"

[cosmic-ray.distributor]
name = "local"
TOML

session="$out/$name.sqlite"
rm -f "$session"
cd "$work"
"$cosmic_ray" init mutation.toml "$session"
"$cosmic_ray" baseline mutation.toml   # the tests must pass unmutated, or every mutant looks killed
"$cosmic_ray" exec mutation.toml "$session"
"${cosmic_ray%cosmic-ray}cr-report" "$session" | tail -n 3
