#!/bin/sh
# cartosync edit: the record goes to $EDITOR, the result is validated and
# committed on the version that was opened.  A change made meanwhile is not
# reverted: the edit is committed on its own base, held by
# refs/cartosync/edits/<commit>, and merged into main field by field.  A
# draft that does not validate is kept and resumed; --discard drops it; an
# unchanged edit commits nothing.
set -eu
. "$(dirname "$0")/lib.sh"

genesis coord mdm-be root1
join ms2 ms2 coord
add_sample ms2 "$SAMPLE/ms2/organization-ms2.json"
svc=$(jq -r .id "$SAMPLE/ms2/service-ms2-consult.json")
add_sample ms2 "$SAMPLE/ms2/service-ms2-consult.json"
path=$(record_path "$svc" ms2 service)
draft=ms2/drafts/$svc.json

# editor NAME BODY: an $EDITOR script $tmp/NAME whose file is "$1"
editor() {
	{
		echo '#!/bin/sh'
		echo 'set -e'
		printf '%s\n' "$2"
	} >"$tmp/$1"
	chmod +x "$tmp/$1"
}

# edit EXPECTED_RC EDITOR_NAME [ARGS]: cartosync -C ms2 --json edit $svc
edit() {
	e_rc=$1
	e_editor=$2
	shift 2
	run "$e_rc" env EDITOR="$tmp/$e_editor" VISUAL= "$CARTOSYNC" -C ms2 --json edit "$svc" "$@"
}

# --- a plain edit
editor set-name 'sed -i "s/\"name\": \"Consultations psychologiques\"/\"name\": \"Consultations psychologiques (Oujda)\"/" "$1"'
before=$(main_of ms2)
edit 0 set-name
err_has "updated service $svc ($path)" "committed "
c=$(main_of ms2)
ne "main after edit" "$c" "$before"
jq_eq "edit --json commit" .commit "$tmp/out" "$c"
jq_eq "edit --json in_main" .in_main "$tmp/out" true
eq "edit's parent" "$(git -C ms2 rev-parse "$c^")" "$before"
run 0 cs -C ms2 --json show "$svc"
jq_eq "name after edit" .name "$tmp/out" "Consultations psychologiques (Oujda)"
jq_eq "categories kept" '.x_categories | join(",")' "$tmp/out" mhpss
git -C ms2 show "main:$path" >stored.json
jq --indent 2 -S . stored.json | cmp -s - stored.json || fail "the edited record is not stored in canonical form"
ok
[ ! -e "$draft" ] || fail "a committed edit left its draft"
ok
git -C ms2 diff --stat "$before" "$c" >stat.txt
eq "files changed by the edit" "$(grep -c '|' stat.txt)" 1
run 0 cs -C ms2 --json log "$svc"
jq_eq "record log" 'map(.message) | join("|")' "$tmp/out" "Edit service $svc|Add service $svc"

# $VISUAL wins over $EDITOR.
editor visual-name 'jq ".name = \"Par VISUAL\"" "$1" >"$1.tmp" && mv "$1.tmp" "$1"'
run 0 env VISUAL="$tmp/visual-name" EDITOR="$tmp/set-name" "$CARTOSYNC" -C ms2 edit "$svc"
run 0 cs -C ms2 --json show "$svc"
jq_eq "name set by VISUAL" .name "$tmp/out" "Par VISUAL"

# --- an unchanged edit commits nothing
editor nothing ':'
before=$(main_of ms2)
edit 0 nothing
err_has "no change; nothing committed"
eq "main after an unchanged edit" "$(main_of ms2)" "$before"
[ ! -e "$draft" ] || fail "an unchanged edit left its draft"
ok
# Reformatting only (key order, indentation) is no change either.
editor reformat 'jq -c . "$1" >"$1.tmp" && mv "$1.tmp" "$1"'
edit 0 reformat
err_has "no change; nothing committed"
eq "main after a reformatting edit" "$(main_of ms2)" "$before"

# --- an edit whose record changed meanwhile commits on its own base
base=$(main_of ms2)
editor concurrent "\"$CARTOSYNC\" -C \"$tmp/ms2\" confirm $svc --method phone
jq '.name = \"Changé pendant une confirmation\"' \"\$1\" >\"\$1.tmp\"
mv \"\$1.tmp\" \"\$1\""
edit 0 concurrent
held=$(jq -r .commit "$tmp/out")
jq_eq "held edit --json in_main" .in_main "$tmp/out" false
err_has "committed $held on the version you started from" "merging"
eq "held edit's parent is the base the edit started on" "$(git -C ms2 rev-parse "$held^")" "$base"
# The concurrent confirmation was committed on the same base; main is now
# their merge, holding both changes, and the edit's ref is gone.
merged=$(main_of ms2)
confirm=$(git -C ms2 rev-list --no-merges -n 1 --author=ms2 "$merged" --not "$held")
eq "confirmation's parent" "$(git -C ms2 rev-parse "$confirm^")" "$base"
eq "main is the merge of the two" "$(git -C ms2 rev-list --parents -n 1 "$merged" | tr ' ' '\n' | tail -n 2 | sort | tr '\n' ' ')" \
	"$(printf '%s\n%s\n' "$held" "$confirm" | sort | tr '\n' ' ')"
git -C ms2 for-each-ref refs/cartosync/edits/ >edits.txt
eq "held edits after the merge" "$(cat edits.txt)" ""
run 0 cs -C ms2 --json show "$svc"
jq_eq "main: method of the concurrent confirmation" .x_verified.method "$tmp/out" phone
jq_eq "main: name from the edit" .name "$tmp/out" "Changé pendant une confirmation"
# The held edit itself changed only the name: it did not revert the
# confirmation it never saw.
git -C ms2 show "$held:$path" >held.json
jq_eq "held edit's name" .name held.json "Changé pendant une confirmation"
jq_eq "held edit's verification (as of its base)" .x_verified.method held.json self_report
git -C ms2 show "$base:$path" | jq 'del(.name)' >base-rest.json
jq 'del(.name)' held.json | cmp -s - base-rest.json ||
	fail "the held edit changes more than the name"
ok
[ ! -e "$draft" ] || fail "a committed held edit left its draft"
ok
verify_ok ms2
verify_ok ms2 "$held"
verify_ok ms2 main
# Stock git accepts the held edit's signature too.
cs -C ms2 keys allowed-signers >signers
git -C ms2 -c gpg.ssh.allowedSignersFile="$tmp/signers" verify-commit "$held" 2>vc.err ||
	{ cat vc.err >&2; fail "git verify-commit of the held edit"; }
ok

# --- a second edit on the same base, from another editor session: like a
# real editor, the outer one loads its buffer, and saves it at the end.
base=$(main_of ms2)
editor second-edit 'jq ".minimum_age = 14" "$1" >"$1.tmp" && mv "$1.tmp" "$1"'
editor outer "cp \"\$1\" \"$tmp/buffer\"
env EDITOR=\"$tmp/second-edit\" \"$CARTOSYNC\" -C \"$tmp/ms2\" edit $svc 2>\"$tmp/inner.err\"
jq '.minimum_age = 16' \"$tmp/buffer\" >\"\$1\""
edit 0 outer
outer=$(jq -r .commit "$tmp/out")
jq_eq "outer edit --json in_main" .in_main "$tmp/out" false
merged=$(main_of ms2)
inner=$(git -C ms2 rev-list --no-merges -n 1 "$merged" --not "$outer")
ne "inner and outer edits" "$inner" "$outer"
git -C ms2 show "$inner:$path" | jq -e '.minimum_age == 14' >/dev/null ||
	fail "the inner edit does not hold its change"
ok
git -C ms2 show "$outer:$path" | jq -e '.minimum_age == 16' >/dev/null ||
	fail "the outer edit does not hold its change"
ok
eq "inner edit's parent" "$(git -C ms2 rev-parse "$inner^")" "$base"
eq "outer edit's parent" "$(git -C ms2 rev-parse "$outer^")" "$base"
# Both changed the same field differently: main is their merge, the record
# keeps the last agreed value, and the conflict lists both candidates with
# the edits that wrote them (docs/merge.md).
git -C ms2 merge-base --is-ancestor "$outer" "$merged" ||
	fail "main does not hold the outer edit"
git -C ms2 merge-base --is-ancestor "$inner" "$merged" ||
	fail "main does not hold the inner edit"
git -C ms2 show "$merged:$path" >merged.json
jq_eq "merged minimum_age: the base's" .minimum_age merged.json \
	"$(git -C ms2 show "$base:$path" | jq .minimum_age)"
git -C ms2 show "$merged:conflicts/$(echo "$svc" | cut -c1-2)/$svc.json" >conflict.json ||
	fail "no conflict file for $svc"
jq -e --arg i "$inner" --arg o "$outer" '.conflicts["/minimum_age"].candidates
	| map({(.edit): .value}) | add | .[$i] == 14 and .[$o] == 16' conflict.json >/dev/null ||
	{ cat conflict.json >&2; fail "the conflict does not list both edits"; }
ok
git -C ms2 rev-parse --verify -q "refs/cartosync/edits/$outer" >/dev/null &&
	fail "refs/cartosync/edits/$outer outlived the merge"
ok
verify_ok ms2

# --- a draft that does not validate is kept, and resumed
base=$(main_of ms2)
# (A fetch of older history leaves main where it is.)
run 0 cs -C ms2 fetch coord --peer coord
err_has "nothing new" "main stays"
eq "main after fetching older history" "$(main_of ms2)" "$base"
editor broken-json 'echo "{ \"name\": \"half" >"$1"'
edit 1 broken-json
err_has "$draft" "your draft is kept" "cartosync edit $svc"
eq "main after a broken draft" "$(main_of ms2)" "$base"
[ -f "$draft" ] || fail "the draft $draft is not kept"
ok
grep -q '"half' "$draft" || fail "the kept draft is not what the editor wrote"
ok
eq "draft's base" "$(cat "ms2/drafts/$svc.base")" "$base"
# Resumed: the editor sees the broken text, fixes it.
editor fix-draft 'grep -q "\"half" "$1" || { echo "not the kept draft" >&2; exit 1; }
git -C "'"$tmp"'/ms2" show "main:'"$path"'" | jq ".name = \"Réparé\"" >"$1"'
edit 0 fix-draft
err_has "resuming your draft of $svc"
c=$(main_of ms2)
eq "resumed edit's parent" "$(git -C ms2 rev-parse "$c^")" "$base"
run 0 cs -C ms2 --json show "$svc"
jq_eq "name after the resumed draft" .name "$tmp/out" "Réparé"
[ ! -e "$draft" ] && [ ! -e "ms2/drafts/$svc.base" ] || fail "the draft outlived its commit"
ok

# An invalid record: the same, with the rule.
base=$(main_of ms2)
editor bad-region 'jq ".x_categories = [\"astrology\"]" "$1" >"$1.tmp" && mv "$1.tmp" "$1"'
edit 1 bad-region
err_has "$path: /x_categories/0: " "astrology" "your draft is kept"
eq "main after an invalid record" "$(main_of ms2)" "$base"
jq_eq "kept invalid draft" '.x_categories[0]' "$draft" astrology
# --discard drops it; the next edit starts from main again.
run 0 cs -C ms2 edit "$svc" --discard
err_has "discarded the draft of $svc"
[ ! -e "$draft" ] && [ ! -e "ms2/drafts/$svc.base" ] || fail "--discard kept the draft"
ok
editor check-fresh 'jq -e ".x_categories == [\"mhpss\"]" "$1" >/dev/null'
edit 0 check-fresh
err_has "no change; nothing committed"
err_lacks "resuming"

# The id cannot change.
editor new-id 'jq ".id = \"00000000-0000-4000-8000-000000000000\"" "$1" >"$1.tmp" && mv "$1.tmp" "$1"'
edit 1 new-id
err_has "the record's id cannot change" "your draft is kept"
run 0 cs -C ms2 edit "$svc" --discard

# An editor that fails: nothing committed.
editor failing 'exit 3'
base=$(main_of ms2)
edit 1 failing
err_has "failed; nothing was committed"
eq "main after a failed editor" "$(main_of ms2)" "$base"
run 0 cs -C ms2 edit "$svc" --discard

# Bad ids and usage.
run 1 cs -C ms2 edit "../../etc/passwd"
err_has "is not a record id"
run 1 env EDITOR="$tmp/nothing" "$CARTOSYNC" -C ms2 edit 00000000-0000-4000-8000-000000000000
err_has "no record"
run 2 cs -C ms2 edit
run 2 cs -C ms2 edit "$svc" --bogus

# A draft resumed after the node learnt its key was revoked: refused, and
# kept (the edit would be rejected the moment it is merged, and the node
# would carry an edit it cannot integrate).
editor failing 'exit 3'
edit 1 failing
run 0 cs -C ms2 fetch coord --peer coord
run 0 cs -C coord members revoke "$(fingerprint ms2)"
run 0 cs -C ms2 fetch coord --peer coord
editor rename 'jq ".name = \"Late\"" "$1" >"$1.tmp" && mv "$1.tmp" "$1"'
before=$(main_of ms2)
edit 1 rename
err_has "cannot write" "is revoked" "your draft is kept"
eq "main after a refused edit" "$(main_of ms2)" "$before"
eq "edits held after a refused edit" \
	"$(git -C ms2 for-each-ref refs/cartosync/edits | wc -l)" 0

verify_ok ms2
done_ok
