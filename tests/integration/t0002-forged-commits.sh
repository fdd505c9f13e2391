#!/bin/sh
# Commits made with stock git and pushed to a side branch of the
# coordinator's node: cartosync verify accepts a well-formed, authorised
# one, and rejects each forgery (exit 3, naming the commit and the reason):
#   (a) signed by a key that is not a member;
#   (b) a member writing into another partner's folder;
#   (c) a valid commit whose armor is re-wrapped at 64 columns;
#   (d) an extra header, validly signed over the whole payload;
#   (e) signed by a revoked key on a parent older than the revocation;
#   (f) unsigned; author or committer another organisation;
#   (g) a root key writing a record; a path outside the map; a record the
#       schemas reject.
# After each case main is unchanged and `cartosync verify main` exits 0.
set -eu
. "$(dirname "$0")/lib.sh"

FORGE="$PY $libdir/tools/forge.py"

genesis coord mdm-be root1
join ms2 ms2 coord
join alcs alcs coord
add_sample alcs "$SAMPLE/alcs/organization-alcs.json"
run 0 cs -C coord fetch alcs --peer alcs
run 0 cs -C ms2 fetch coord --peer coord
add_sample ms2 "$SAMPLE/ms2/organization-ms2.json"
ms2_edit1=$(main_of ms2)
add_sample ms2 "$SAMPLE/ms2/service-ms2-consult.json"
ms2_edit2=$(main_of ms2)
run 0 cs -C coord fetch ms2 --peer ms2
eq "coord fast-forwarded to ms2" "$(main_of coord)" "$ms2_edit2"
verify_ok coord main
main0=$(main_of coord)
cs -C coord keys allowed-signers >signers || fail "allowed-signers"

ssh-keygen -q -t ed25519 -N '' -C stranger -f stranger || fail "ssh-keygen"

git clone -q coord wt || fail "git clone of the node"
ok

# A new record of OWNER (a sample with a new id), written into the work
# tree, staged; prints its path.
n_new=0
new_record() {
	n_new=$((n_new + 1))
	nr_id=$(printf '5b0e7a3c-1111-4222-8333-%012d' "$n_new")
	nr_path=$(record_path "$nr_id" "$1" service)
	mkdir -p "wt/$(dirname "$nr_path")"
	jq --indent 2 -S --arg id "$nr_id" --arg o "$1" \
		'.id = $id | .x_owner = $o | .x_verified.by = $o | .x_status = "proposed"' \
		"$SAMPLE/ms2/service-ms2-line.json" >"wt/$nr_path" ||
		fail "jq: new record"
	git -C wt add "$nr_path" || fail "git add $nr_path"
	echo "$nr_path"
}

# stock_commit KEY AUTHOR MESSAGE: commit what is staged in wt with stock
# git, signed by KEY (unsigned if KEY is -), author and committer AUTHOR
# (committer $COMMITTER if set); prints the commit id.
stock_commit() {
	sc_name=$2
	if [ "$1" = - ]; then
		set -- -c commit.gpgsign=false commit -q -m "$3"
	else
		set -- -c gpg.format=ssh -c user.signingkey="$tmp/$1" \
			commit -q -S -m "$3"
	fi
	GIT_COMMITTER_NAME=${COMMITTER:-$sc_name} GIT_AUTHOR_NAME=$sc_name \
		GIT_AUTHOR_EMAIL=forger@example.org \
		GIT_COMMITTER_EMAIL=forger@example.org \
		git -C wt "$@" >git.err 2>&1 ||
		{ cat git.err >&2; fail "git commit '$3'"; }
	git -C wt rev-parse HEAD
}

# push_branch COMMIT BRANCH: push a commit of wt to refs/heads/BRANCH of coord
push_branch() {
	git -C wt push -q "$tmp/coord" "$1:refs/heads/$2" >git.err 2>&1 ||
		{ cat git.err >&2; fail "git push to refs/heads/$2"; }
	eq "coord's $2" "$(git -C coord rev-parse "refs/heads/$2")" "$1"
}

# start_at COMMIT: reset the work tree to COMMIT of coord (fetched if new)
start_at() {
	if ! git -C wt cat-file -e "$1^{commit}" 2>/dev/null; then
		git -C wt fetch -q origin 2>git.err ||
			{ cat git.err >&2; fail "git fetch"; }
	fi
	git -C wt reset -q --hard "$1" || fail "git reset to $1"
}

# rejected BRANCH COMMIT FRAGMENT...: verify BRANCH exits 3 naming COMMIT
# and each fragment; main is unchanged and still verifies; then the branch
# is dropped.
rejected() {
	r_branch=$1
	r_commit=$2
	shift 2
	run 3 cs -C coord verify "$r_branch"
	err_has "commit $r_commit: " "$@" "some are invalid"
	# Every ref (no REV): the bad branch is found too.
	run 3 cs -C coord --json verify
	jq_eq "json verdict with $r_branch" .valid "$tmp/out" false
	jq_eq "json names $r_commit" \
		"[.invalid[] | select(.commit == \"$r_commit\")] | length" "$tmp/out" 1
	eq "main after $r_branch" "$(main_of coord)" "$main_expected"
	verify_ok coord main
	git -C coord update-ref -d "refs/heads/$r_branch" || fail "drop $r_branch"
}

main_expected=$main0

# --- control: a stock git commit by ms2 in its own folder is a valid edit
start_at "$main_expected"
new_record ms2 >/dev/null
good=$(stock_commit ms2/keys/signing_key ms2 "Add a service with stock git")
push_branch "$good" stock-ok
verify_ok coord stock-ok
git -C coord -c gpg.ssh.allowedSignersFile="$tmp/signers" verify-commit "$good" 2>vc.err ||
	{ cat vc.err >&2; fail "git verify-commit of the control"; }
ok
git -C coord update-ref -d refs/heads/stock-ok

# --- (a) signed by a key that is not a member
start_at "$main_expected"
new_record ms2 >/dev/null
c=$(stock_commit stranger ms2 "Add a service, signed by a stranger")
push_branch "$c" forged-a
rejected forged-a "$c" "signed by $(ssh-keygen -l -f stranger | cut -d' ' -f2), which is not a member key"

# --- (b) a member writing into another partner's folder
start_at "$main_expected"
p=$(new_record alcs)
case $p in records/alcs/service/*) ;; *) fail "path $p" ;; esac
c=$(stock_commit ms2/keys/signing_key ms2 "Write into alcs' folder")
push_branch "$c" forged-b
rejected forged-b "$c" "ms2 may not write '$p'"
# Changing an existing record of alcs, too.
start_at "$main_expected"
alcs_org=$(record_path "$(jq -r .id "$SAMPLE/alcs/organization-alcs.json")" alcs organization)
jq --indent 2 -S '.name = "Taken over"' "wt/$alcs_org" >x.json && mv x.json "wt/$alcs_org"
git -C wt add "$alcs_org"
c=$(stock_commit ms2/keys/signing_key ms2 "Rename alcs")
push_branch "$c" forged-b2
rejected forged-b2 "$c" "ms2 may not write '$alcs_org'"
# and removing one of it.
start_at "$main_expected"
git -C wt rm -q "$alcs_org"
c=$(stock_commit ms2/keys/signing_key ms2 "Remove alcs")
push_branch "$c" forged-b3
rejected forged-b3 "$c" "ms2 may not write '$alcs_org'"

# --- (c) a valid commit re-written with its armor re-wrapped at 64 columns
git -C coord cat-file commit "$good" >good.raw || fail "cat-file $good"
$FORGE rewrap 64 <good.raw >wrap64.raw || fail "forge rewrap"
c=$(git -C wt hash-object -t commit -w --stdin <wrap64.raw) || fail "hash-object"
ne "re-wrapped commit id" "$c" "$good"
eq "same tree" "$(git -C wt rev-parse "$c^{tree}")" "$(git -C coord rev-parse "$good^{tree}")"
# Stock git sees the same, valid signature: a new commit id from one
# signature.  Only the canonical-armor rule stops it.
git -C wt -c gpg.ssh.allowedSignersFile="$tmp/signers" verify-commit "$c" 2>vc.err ||
	{ cat vc.err >&2; fail "git does not accept the re-wrapped commit (the case proves nothing)"; }
ok
push_branch "$c" forged-c
rejected forged-c "$c" "armor is not canonical"
# The original, with canonical armor, is fine on its own.
git -C coord update-ref refs/heads/control "$good"
verify_ok coord control
git -C coord update-ref -d refs/heads/control

# --- (d) an extra header, validly signed over the whole payload
i=0
for header in "encoding ISO-8859-1" "x-note foo"; do
	i=$((i + 1))
	$FORGE strip-sig <good.raw | $FORGE add-header "$header" >extra$i.payload ||
		fail "forge add-header"
	rm -f extra$i.payload.sig
	ssh-keygen -q -Y sign -n git -f ms2/keys/signing_key extra$i.payload 2>sign.err ||
		{ cat sign.err >&2; fail "ssh-keygen -Y sign"; }
	$FORGE insert-sig extra$i.payload.sig <extra$i.payload >extra$i.raw
	c=$(git -C wt hash-object -t commit -w --stdin <extra$i.raw) || fail "hash-object"
	git -C wt cat-file commit "$c" | grep -q "^$header\$" || fail "no '$header' header"
	git -C wt -c gpg.ssh.allowedSignersFile="$tmp/signers" verify-commit "$c" 2>vc.err ||
		{ cat vc.err >&2; fail "git does not accept the '$header' commit (the case proves nothing)"; }
	ok
	push_branch "$c" forged-d$i
	rejected forged-d$i "$c" "unexpected header \"${header%% *}\""
done

# --- (f) unsigned; author another organisation; committer another one
start_at "$main_expected"
new_record ms2 >/dev/null
c=$(stock_commit - ms2 "Unsigned")
git -C wt cat-file commit "$c" | grep -q '^gpgsig ' && fail "commit is signed"
push_branch "$c" forged-f1
rejected forged-f1 "$c" "commit is not signed"

start_at "$main_expected"
new_record ms2 >/dev/null
c=$(stock_commit ms2/keys/signing_key alcs "Signed by ms2, authored as alcs")
push_branch "$c" forged-f2
rejected forged-f2 "$c" "author \"alcs\" is not the signer's organisation \"ms2\""

# --- (g) a root key writing a record; a path outside the map; an invalid
# record
start_at "$main_expected"
p=$(new_record ms2)
c=$(stock_commit root1 root "A root key writes a record")
push_branch "$c" forged-g1
rejected forged-g1 "$c" "root may not write '$p'"

start_at "$main_expected"
echo "hello" >wt/README
git -C wt add README
c=$(stock_commit ms2/keys/signing_key ms2 "A file outside the map")
push_branch "$c" forged-g2
rejected forged-g2 "$c" "'README' is not a path of the map"

start_at "$main_expected"
p=$(new_record ms2)
jq --indent 2 -S '.x_admin = {"adm1": "MA-99"} | .x_categories = ["no-such-category"]' \
	"wt/$p" >x.json && mv x.json "wt/$p"
git -C wt add "$p"
c=$(stock_commit ms2/keys/signing_key ms2 "An invalid record")
push_branch "$c" forged-g3
rejected forged-g3 "$c" "$p"

# An edit that stands on a rejected commit is rejected with it.
start_at "$main_expected"
new_record ms2 >/dev/null
bad=$(stock_commit stranger ms2 "Signed by a stranger")
new_record ms2 >/dev/null
c=$(stock_commit ms2/keys/signing_key ms2 "A valid edit on a forged one")
push_branch "$c" forged-chain
run 3 cs -C coord verify forged-chain
err_has "commit $bad: " "commit $c: " "$bad"
git -C coord update-ref -d refs/heads/forged-chain

# --- (e) signed by a revoked key on a parent older than the revocation
before=$(main_of coord)
# ms2 does not know yet, and keeps editing on what it has.
add_sample ms2 "$SAMPLE/ms2/location-ms2-oujda.json"
late=$(main_of ms2)
eq "ms2's late edit stands on" "$(git -C ms2 rev-parse "$late^")" "$before"

fp=$(fingerprint ms2)
run 0 cs -C coord members revoke "$fp" --reason "laptop stolen"
revocation=$(main_of coord)
eq "revocation's parent" "$(git -C coord rev-parse "$revocation^")" "$before"
main_expected=$revocation
run 0 cs -C coord members list
err_has "$fp" "[revoked]"
run 0 cs -C coord --json members list
jq_eq "revocation reason" "[.keys[] | select(.org == \"ms2\") | .revoked.reason] | join(\",\")" \
	"$tmp/out" "laptop stolen"

# The key's edits made before, in the revocation's past, still verify.
for e in "$ms2_edit1" "$ms2_edit2"; do
	git -C coord merge-base --is-ancestor "$e" "$revocation" ||
		fail "$e is not in the revocation's past"
	ok
done
verify_ok coord main
verify_ok coord "$ms2_edit2"
verify_ok coord

# Stock git: ms2's old key signs on the commit before the revocation.
start_at "$before"
new_record ms2 >/dev/null
c=$(stock_commit ms2/keys/signing_key ms2 "Signed with a revoked key on old history")
eq "forged parent" "$(git -C wt rev-parse "$c^")" "$before"
push_branch "$c" stolen
rejected stolen "$c" "of ms2, which is revoked as of commit $(echo "$revocation" | cut -c1-12)" \
	"not in that commit's past"

# Stock git: the same key on top of the revocation.
start_at "$revocation"
new_record ms2 >/dev/null
c=$(stock_commit ms2/keys/signing_key ms2 "Signed with a revoked key on new history")
push_branch "$c" stolen2
rejected stolen2 "$c" "signed by $fp of ms2, which is revoked"

# The coordinator fetches ms2's late edit: refused, quarantined with its
# reason; the valid history below it is kept, the late edit's objects never
# enter the served store.
run 3 cs -C coord fetch ms2 --peer ms2
err_has "commit $late: " "revoked" "not in that commit's past" \
	"1 commit of ${late%"${late#????????????}"} rejected, kept in quarantine"
eq "main after refused fetch" "$(main_of coord)" "$revocation"
if git -C coord rev-parse -q --verify refs/peers/ms2/main >/dev/null; then
	fail "refs/peers/ms2/main still names ms2's rejected head"
fi
eq "the valid part kept" \
	"$(git -C coord for-each-ref --format='%(refname)' refs/peers/ms2/)" \
	"refs/peers/ms2/valid/$(git -C ms2 rev-parse "$late^")"
if git -C coord cat-file -e "$late" 2>/dev/null; then
	fail "the refused commit $late is in coord's object store"
fi
reason=$(ls coord/quarantine/ms2/*/reason.json) ||
	fail "no quarantine record for ms2"
jq_eq "quarantined commit" '.issues[0].commit' "$reason" "$late"
jq_eq "quarantine reason" '.issues[0].reason | test("revoked")' "$reason" true
git -C "$(dirname "$reason")" cat-file -e "$late" ||
	fail "the quarantine lacks the refused commit"
ok
verify_ok coord

# --- (f) continued: the committer is another organisation than the signer's
# (docs/architecture.md: "An edit's author and committer are the signer's
# organisation code").
start_at "$main_expected"
new_record alcs >/dev/null
c=$(COMMITTER=ms2 stock_commit alcs/keys/signing_key alcs "Signed by alcs, committed as ms2")
eq "committer of the forged commit" "$(git -C wt log -1 --format=%cn "$c")" ms2
eq "author of the forged commit" "$(git -C wt log -1 --format=%an "$c")" alcs
push_branch "$c" forged-f3
rejected forged-f3 "$c" "committer \"ms2\" is not the signer's organisation \"alcs\""

done_ok
