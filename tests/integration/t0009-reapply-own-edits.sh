#!/bin/sh
# A node's own edits that stand on a commit found invalid later are
# re-applied on valid history, re-signed (DESIGN.md §5), so honest work is
# not lost:
#   ms2 edits a shared record; alcs fetches it and edits the same record
#   twice on top; the coordinator revokes ms2's key on a history without
#   ms2's edit, so that edit is invalid (it is not in the revocation's
#   past) and so, by inheritance, are alcs's two edits.  When alcs learns
#   of the revocation, its two edits are re-applied in order on the valid
#   history, the values alcs wrote are in the map, and every node
#   converges and verifies.
set -eu
. "$(dirname "$0")/lib.sh"

genesis coord mdm-be root1
join ms2 ms2 coord
join alcs alcs coord

cat >"$tmp/ed.sh" <<'E'
#!/bin/sh
jq --arg v "$V" ".${F:-name} = \$v" "$1" >"$1.t" && mv "$1.t" "$1"
E
chmod +x "$tmp/ed.sh"
set_field() {
	F=$2 V=$3 EDITOR=$tmp/ed.sh run 0 cs -C "$1" --json edit "$id"
}
show() {
	cs -C "$1" --json show "$id" | jq -r ".$2"
}

printf '{"x_record_type":"organization","x_owner":"shared","name":"HCR","description":"d"}' >r.json
run 0 cs -C coord --json add r.json
id=$(jq -r .id "$tmp/out")
for n in ms2 alcs; do run 0 cs -C $n fetch coord --peer coord; done

set_field ms2 description by-ms2
run 0 cs -C alcs fetch ms2 --peer ms2
eq "alcs took ms2's edit" "$(show alcs description)" by-ms2
set_field alcs name "HCR Rabat"
first=$(jq -r .commit "$tmp/out")
set_field alcs alternate_name "HCR-Rabat"
second=$(jq -r .commit "$tmp/out")

run 0 cs -C coord members revoke "$(fingerprint ms2)"
run 0 cs -C alcs --json fetch coord --peer coord
err_has "which is revoked" "2 edits of this node re-applied on valid history"
jq_eq "reapplied in --json" .reapplied "$tmp/out" 2
jq_eq "none left" .not_reapplied "$tmp/out" 0

# alcs's values are in the map, ms2's invalid one is not.
eq "alcs's name" "$(show alcs name)" "HCR Rabat"
eq "alcs's alternate name" "$(show alcs alternate_name)" "HCR-Rabat"
eq "ms2's invalid edit is gone" "$(show alcs description)" d
# The originals are no longer in main; new commits, signed by alcs, are.
if git -C alcs merge-base --is-ancestor "$first" main; then
	fail "the invalid original $first is still in main"
fi
git -C alcs log --format='%an: %B' --author=alcs main >log.txt
grep -q "Re-applied from $first" log.txt ||
	fail "no re-applied commit of $first in main"
grep -q "Re-applied from $second" log.txt ||
	fail "no re-applied commit of $second in main"
ok
eq "no edit kept for re-applying" \
	"$(git -C alcs for-each-ref refs/cartosync/reapply | wc -l)" 0
verify_ok alcs main

# Everyone converges on it.
run 0 cs -C coord fetch alcs --peer alcs
run 0 cs -C alcs fetch coord --peer coord
eq "coord's main" "$(main_of coord)" "$(main_of alcs)"
eq "the name on coord" "$(show coord name)" "HCR Rabat"
verify_ok coord main
# A second integration re-applies nothing more.
run 0 cs -C alcs --json merge
jq_eq "nothing more to re-apply" .reapplied "$tmp/out" 0
done_ok
