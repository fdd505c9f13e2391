#!/bin/sh
# Convergence and no silent loss, as a property (DESIGN §6, §12).  For each
# seed, 3 to 5 nodes make random concurrent signed edits (text and set
# fields, confirm, publish, retire, rm, drafts resumed on an old base), sync
# pairwise in random order and around a ring "at the same time"; the
# coordinator resolves conflicts while partners change the same fields, and
# revokes a partner who goes on editing offline.  After syncing until
# nothing changes: every node has the same main and verifies; no
# acknowledged edit of a valid key is missing; every field a valid edit
# changed is in the map, a candidate of an open conflict, or superseded by
# an edit or resolution that saw it; no resolution is silently overridden;
# each conflict candidate names an edit holding its value; the revoked
# key's later edits are nowhere.  tests/integration/tools/convergence.py
# drives it (its docstring lists the checks), convergence_oracle.py checks
# the final history with stock git.
#
#   CONVERGENCE_SEEDS="3 17"   run these seeds only (default: 1..4 and one
#                              random one, printed first)
#   CONVERGENCE_ROUNDS=N       rounds of operations per seed (default 4)
#   CONVERGENCE_JOBS=N         seeds run at once (default 2)
#   CONVERGENCE_KEEP=DIR       keep every seed's nodes in DIR
#   CONVERGENCE_STRICT=1       fail (not only warn) on conflict candidates
#                              attributed to an edit without their value
set -eu
. "$(dirname "$0")/lib.sh"

for tool in jq ssh-keygen; do
	command -v "$tool" >/dev/null 2>&1 || fail "'$tool' is needed"
done
work=${CONVERGENCE_KEEP:-$tmp/work}
# One binary for the whole run, even if the build tree is relinked meanwhile.
cp "$CARTOSYNC" "$tmp/cartosync" || fail "cannot copy $CARTOSYNC"
set -- --cartosync "$tmp/cartosync" --schema-dir "$CS_SCHEMA_DIR" \
	--sample "$SAMPLE" --work "$work" \
	--rounds "${CONVERGENCE_ROUNDS:-4}" --jobs "${CONVERGENCE_JOBS:-2}"
# By default a fixed list and one random seed, printed first, to keep the
# suite within its time budget; CONVERGENCE_SEEDS runs others.
if [ -z "${CONVERGENCE_SEEDS:-}" ]; then
	CONVERGENCE_SEEDS="1 2 3 4 $(od -An -N2 -tu2 /dev/urandom | tr -d ' ')"
fi
set -- "$@" --seeds "$CONVERGENCE_SEEDS"

if [ -n "${CONVERGENCE_KEEP:-}" ]; then
	set -- "$@" --keep
fi
if [ -n "${CONVERGENCE_STRICT:-}" ]; then
	set -- "$@" --strict-attribution
fi
$PY "$libdir/tools/convergence.py" "$@" >&2 ||
	fail "the convergence property does not hold (the seeds and how to rerun them are above)"
ok
done_ok
