#!/bin/sh
# Golden vectors of the merge: fixed histories (fixed keys, schemas,
# records and times) must give exactly the merge ids in
# tests/data/merge-vectors/expected.txt, on every node, whatever order the
# histories arrive in.  UPDATE_VECTORS=1 rewrites the file (see its README).
set -eu
vec="$CS_SOURCE_ROOT/tests/data/merge-vectors"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
export HOME="$tmp" CARTOSYNC_SCHEMA_DIR="$vec/schema"
fail() { echo "FAIL: $*"; exit 1; }
cs() { "$CARTOSYNC" "$@" 2>>"$tmp/log"; }
t=1735689600
tick() { t=$((t + 60)); export CARTOSYNC_TIME=$t; }

# Keys as files of mode 0600, as cartosync requires.
mkdir keys
for k in root coord ms2 alcs; do
	cp "$vec/keys/$k" "$vec/keys/$k.pub" keys/
	chmod 600 "keys/$k"
done
for k in coord ms2 alcs; do cp "$vec/keys/$k-tls.pem" keys/; done

tick
cs -C coord init --org mdm-be --genesis --name "Médecins du Monde Belgique" \
	--root-key keys/root.pub --signing-key keys/coord \
	--tls-key keys/coord-tls.pem >/dev/null
for p in ms2 alcs; do
	tick
	cs -C "$p" init --org "$p" --join coord --signing-key "keys/$p" \
		--tls-key "keys/$p-tls.pem"
	cs -C "$p" keys public >"$p.pub"
	tick
	cs -C coord members add --org "$p" --role member --key "$p.pub"
done
tick
cs -C coord add "$vec/records/shared-service.json"
cs -C coord add "$vec/records/shared-org.json"
svc=$(jq -r .id "$vec/records/shared-service.json")
org=$(jq -r .id "$vec/records/shared-org.json")
for p in ms2 alcs; do cs -C "$p" fetch coord --peer mdm-be; done

# edit NODE ID JQ-FILTER: a signed edit through $EDITOR
n=0
edit() {
	n=$((n + 1))
	printf '#!/bin/sh\njq %s "$1" >"$1.new" && mv "$1.new" "$1"\n' \
		"'$3'" >"ed$n"
	chmod +x "ed$n"
	tick
	EDITOR="$tmp/ed$n" cs -C "$1" edit "$2"
}
# sync A B...: every node fetches every other, twice
sync_all() {
	for round in 1 2; do
		for a in "$@"; do
			for b in "$@"; do
				[ "$a" = "$b" ] || cs -C "$a" fetch "$b" --peer "$b"
			done
		done
	done
}
main_of() { git -C "$1" rev-parse main; }
same_main() {
	m=$(main_of "$1")
	for x in "$@"; do
		[ "$(main_of "$x")" = "$m" ] || fail "$x's main differs from $1's"
	done
	echo "$m"
}

: >result.txt
record() { echo "$1 $2" >>result.txt; }

# v1: different fields of a shared record merge cleanly.
edit ms2 "$svc" '.name = "Enregistrement HCR (ms2)"'
edit alcs "$svc" '.description = "Description revue par ALCS"'
sync_all coord ms2 alcs
record v1-clean "$(same_main coord ms2 alcs)"
[ "$(cs -C coord show "$svc" --json | jq -r .name)" = "Enregistrement HCR (ms2)" ] ||
	fail "v1: ms2's name is not in the merge"

# v2: the same field differently: a conflict, base value kept.
edit ms2 "$org" '.name = "HCR Rabat (ms2)"'
edit alcs "$org" '.name = "UNHCR Rabat (alcs)"'
sync_all coord ms2 alcs
record v2-conflict "$(same_main coord ms2 alcs)"
cs -C coord conflicts --json | jq -e --arg id "$org" \
	'map(select(.id == $id)) | length == 1' >/dev/null ||
	fail "v2: no open conflict on $org"

# The conflict is listed on every node; a partner may not resolve a shared
# record's conflict (no steward named for the region): refused, nothing
# committed.
for x in ms2 alcs; do
	cs -C "$x" conflicts --json | jq -e --arg id "$org" \
		'map(select(.id == $id)) | length == 1' >/dev/null ||
		fail "v2: the conflict is not listed on $x"
done
before=$(main_of ms2)
if "$CARTOSYNC" -C ms2 conflicts resolve "$org" --take ms2 2>err.txt; then
	fail "v2: ms2 resolved a shared record's conflict"
fi
grep -q "ms2 may not resolve the conflicts" err.txt ||
	{ cat err.txt; fail "v2: unclear refusal"; }
[ "$(main_of ms2)" = "$before" ] || fail "v2: the refused resolution moved main"

# v3: the coordinator resolves, everyone gets it.
tick
cs -C coord conflicts resolve "$org" --take alcs
sync_all coord ms2 alcs
record v3-resolved "$(same_main coord ms2 alcs)"

# v4: a resolution that keeps the current value, raced by an edit that did
# not see it: the conflict reopens and the resolution's value stays.
edit ms2 "$org" '.name = "HCR (ms2, encore)"'
edit alcs "$org" '.name = "HCR (alcs, encore)"'
sync_all coord ms2 alcs
current=$(cs -C coord show "$org" --json | jq -c .name)
tick
cs -C coord conflicts resolve "$org" --value "/name=$current"
edit ms2 "$org" '.name = "HCR (ms2 sans avoir vu)"'
sync_all coord ms2 alcs
record v4-reopened "$(same_main coord ms2 alcs)"
[ "$(cs -C alcs show "$org" --json | jq -c .name)" = "$current" ] ||
	fail "v4: the resolution's value was overridden"
cs -C alcs conflicts show "$org" --json |
	jq -e '.conflicts["/name"].candidates | length == 2' >/dev/null ||
	fail "v4: the conflict did not reopen"

# v5: an edit against a deletion keeps the deletion.
tick
cs -C ms2 rm "$svc"
edit alcs "$svc" '.fees_description = "Gratuit (alcs)"'
sync_all coord ms2 alcs
record v5-delete "$(same_main coord ms2 alcs)"
cs -C coord show "$svc" >/dev/null 2>&1 && fail "v5: the deleted record is back"

for x in coord ms2 alcs; do cs -C "$x" verify >/dev/null || fail "verify on $x"; done

# A hand-made merge whose tree is not the merge of its parents (here: the
# first parent's tree) is rejected by verify, naming the commit.
m=$(main_of coord)
git -C coord cat-file commit "$m" >merge.txt
head -n 1 merge.txt | grep -q '^tree ' || fail "main is not a commit"
p1=$(sed -n 2p merge.txt | cut -d' ' -f2)
{
	echo "tree $(git -C coord rev-parse "$p1^{tree}")"
	tail -n +2 merge.txt
} >forged.txt
forged=$(git -C coord hash-object -t commit -w "$tmp/forged.txt")
git -C coord update-ref refs/heads/forged "$forged"
rc=0
"$CARTOSYNC" -C coord verify 2>err.txt || rc=$?
[ $rc -eq 3 ] || fail "verify of a forged merge exited $rc, expected 3"
grep -q "commit $forged: the merge differs from its recomputation" err.txt ||
	{ cat err.txt; fail "the forged merge is not named"; }
git -C coord update-ref -d refs/heads/forged

if [ "${UPDATE_VECTORS:-}" = 1 ]; then
	cp result.txt "$vec/expected.txt"
	echo "wrote $vec/expected.txt"
	cat result.txt
	exit 0
fi
diff -u "$vec/expected.txt" result.txt ||
	fail "merge ids moved: the merge algorithm changed (see $vec/README.md)"
echo ok
