#!/bin/sh
# The coordinator role passes from MdM Belgique to PNPM.  A genesis with 3
# root keys (2 needed); PNPM joins; admitting its coordinator key needs 2
# root approvals (none, one, the same twice, a non-root key, or approvals of
# another change are refused); PNPM then revokes the old coordinator key
# (approved too) and writes under its own authority.  Every node verifies
# the whole history; the old coordinator key can no longer write, and an
# edit it made on the history before the revocation is refused.
set -eu
. "$(dirname "$0")/lib.sh"

genesis coord mdm-be root1 root2 root3
run 0 cs -C coord members list
err_has "root: 2 of 3 keys"
git -C coord show main:consortium/members.json >members0.json
jq_eq "root threshold" .root.threshold members0.json 2
jq_eq "root keys" '.root.keys | length' members0.json 3

join ms2 ms2 coord
add_sample ms2 "$SAMPLE/ms2/organization-ms2.json"
ms2_before=$(main_of ms2)
run 0 cs -C coord fetch ms2 --peer ms2

run 0 cs -C pnpm init --org pnpm --join coord
cs -C pnpm keys public >pnpm.pub || fail "keys public"
pnpm_fp=$(fingerprint pnpm)
coord_fp=$(fingerprint coord)

# approval_line: the parent and members ids of the 'cartosync root approve'
# line of the last stderr, into $P and $B
approval_line() {
	line=$(grep -F 'cartosync root approve --parent ' "$tmp/err") ||
		fail "no 'cartosync root approve --parent P --members B' line"
	P=$(echo "$line" | sed -n 's/.*--parent \([0-9a-f]\{40\}\) --members \([0-9a-f]\{40\}\).*/\1/p')
	B=$(echo "$line" | sed -n 's/.*--parent \([0-9a-f]\{40\}\) --members \([0-9a-f]\{40\}\).*/\2/p')
	[ -n "$P" ] && [ -n "$B" ] || fail "cannot read P and B in: $line"
	ok
}

# approve NAME KEY: a root approval of $P/$B by KEY, in $tmp/NAME
approve() {
	run 0 cs root approve --parent "$P" --members "$B" --key "$2"
	cp "$tmp/out" "$tmp/$1"
	grep -q -- '-----BEGIN SSH SIGNATURE-----' "$tmp/$1" || fail "approval $1 is not an SSH signature"
	ok
}

# --- no approval: refused, and told which approvals to collect
m=$(main_of coord)
run 1 cs -C coord members add --org pnpm --role coordinator --key pnpm.pub \
	--name "Plateforme nationale de protection des migrants"
err_has "needs 2 root approvals" "--key ROOT_KEY" "--approval"
approval_line
eq "approval's parent is main" "$P" "$m"
eq "main after a refused admission" "$(main_of coord)" "$m"

approve a1 root1
approve a2 root2
approve a3 root3
# Stock ssh-keygen checks an approval (docs/protocol.md §5).
printf 'cartosync-root-approval/1\nparent %s\nmembers %s\n' "$P" "$B" >approval.txt
for k in root1 root2 root3; do
	printf 'root namespaces="cartosync-root" %s\n' "$(cut -d' ' -f1,2 "$k.pub")"
done >root-signers
ssh-keygen -Y verify -f root-signers -I root -n cartosync-root -s a1 <approval.txt >sk.out 2>&1 ||
	{ cat sk.out >&2; fail "ssh-keygen -Y verify of a root approval"; }
ok
# A non-root key's approval.
approve ax coord/keys/signing_key
ssh-keygen -Y verify -f root-signers -I root -n cartosync-root -s ax <approval.txt >/dev/null 2>&1 &&
	fail "ssh-keygen accepts the coordinator's approval as a root's"
ok

# add_pnpm_refused RC FRAGMENT ARGS...: refused with FRAGMENT, main unchanged
add_pnpm_refused() {
	r_rc=$1
	r_frag=$2
	shift 2
	run "$r_rc" cs -C coord members add --org pnpm --role coordinator --key pnpm.pub \
		--name "Plateforme nationale de protection des migrants" "$@"
	err_has "$r_frag"
	eq "main after a refused admission ($*)" "$(main_of coord)" "$m"
}
add_pnpm_refused 3 "1 root approval, 2 needed" --approval a1
add_pnpm_refused 3 "1 root approval, 2 needed" --approval a2 --approval a2
add_pnpm_refused 3 "not by a root key" --approval a1 --approval ax
echo "not a signature" >junk
add_pnpm_refused 3 "signature 2: not an ssh signature" --approval a1 --approval junk
run 1 cs -C coord members add --org pnpm --role coordinator --key pnpm.pub \
	--name "Plateforme nationale de protection des migrants" --approval a1 --approval "$tmp/nonexistent"
err_has "nonexistent"
# Approvals of another change (a member role, the same key) do not carry over.
add_pnpm_refused 3 "does not match the data" --approval a1 --approval a2 --holder "someone else"

# --- two root approvals: admitted
run 0 cs -C coord members add --org pnpm --role coordinator --key pnpm.pub \
	--name "Plateforme nationale de protection des migrants" --approval a1 --approval a3
admit=$(main_of coord)
eq "admission's parent" "$(git -C coord rev-parse "$admit^")" "$m"
eq "members blob the roots approved" "$(git -C coord rev-parse "$admit:consortium/members.json")" "$B"
git -C coord show "$admit:consortium/root-approval.json" >ra.json
jq_eq "root-approval parent" .parent ra.json "$P"
jq_eq "root-approval members" .members ra.json "$B"
jq_eq "root-approval signatures" '.signatures | length' ra.json 2
run 0 cs -C coord --json members list
jq_eq "pnpm's role" '[.keys[] | select(.org == "pnpm") | .role] | join(",")' "$tmp/out" coordinator
jq_eq "pnpm's name" '.organizations.pnpm.name' "$tmp/out" "Plateforme nationale de protection des migrants"
verify_ok coord
# The same approvals cannot be replayed on another change.
run 1 cs -C coord members add --org pnpm --role coordinator --key pnpm.pub --approval a1 --approval a3
err_has "listed already"

# A member key needs no root approval.
join cefa cefa coord

# --- PNPM takes over: fetches, revokes the old coordinator key
run 0 cs -C pnpm fetch coord --peer coord
eq "pnpm's main" "$(main_of pnpm)" "$(main_of coord)"
m=$(main_of pnpm)
run 1 cs -C pnpm members revoke "$coord_fp" --reason "handover to PNPM"
err_has "needs 2 root approvals"
approval_line
eq "revocation approval's parent" "$P" "$m"
# The admission's approvals are bound to another parent and file.
run 3 cs -C pnpm members revoke "$coord_fp" --reason "handover to PNPM" --approval a1 --approval a3
err_has "does not match the data"
eq "main after a replayed approval" "$(main_of pnpm)" "$m"
approve b2 root2
approve b3 root3
run 3 cs -C pnpm members revoke "$coord_fp" --reason "handover to PNPM" --approval b2
err_has "1 root approval, 2 needed"
run 0 cs -C pnpm members revoke "$coord_fp" --reason "handover to PNPM" --approval b2 --approval b3
revocation=$(main_of pnpm)
eq "revocation's parent" "$(git -C pnpm rev-parse "$revocation^")" "$m"
eq "revocation's author" "$(git -C pnpm log -1 --format=%an "$revocation")" pnpm
run 0 cs -C pnpm members list
err_has "$coord_fp" "[revoked]" "$pnpm_fp"
verify_ok pnpm

# --- PNPM writes under its authority: a shared record, and an edit of a
# partner's record (the coordinator may write records/**).
add_sample pnpm "$SAMPLE/shared/organization-hcr-rabat.json"
ms2_org=$(jq -r .id "$SAMPLE/ms2/organization-ms2.json")
cat >fix-name.sh <<'EOF'
#!/bin/sh
jq '.alternate_name = "MS2 (corrigé par la coordination)"' "$1" >"$1.tmp" && mv "$1.tmp" "$1"
EOF
chmod +x fix-name.sh
run 0 env EDITOR="$tmp/fix-name.sh" "$CARTOSYNC" -C pnpm edit "$ms2_org"
run 0 cs -C pnpm --json show "$ms2_org"
jq_eq "ms2's record edited by pnpm" .alternate_name "$tmp/out" "MS2 (corrigé par la coordination)"
jq_eq "ms2's record still owned by ms2" .x_owner "$tmp/out" ms2
eq "author of the coordinator's edit" "$(git -C pnpm log -1 --format=%an main)" pnpm
run 0 cs -C pnpm publish "$ms2_org"
# PNPM admits a new member by itself (no root approval for a member key).
run 0 cs -C gadem init --org gadem --join pnpm
cs -C gadem keys public >gadem.pub
run 0 cs -C pnpm members add --org gadem --role member --key gadem.pub
run 0 cs -C gadem fetch pnpm --peer pnpm
add_sample gadem "$SAMPLE/shared/location-hcr-rabat.json"
run 0 cs -C pnpm fetch gadem --peer gadem
eq "pnpm took gadem's edit" "$(main_of pnpm)" "$(main_of gadem)"

# --- the old coordinator key, unaware (or stolen), edits the history
# before the revocation (in a copy of its node): refused
cp -R coord stale
add_sample stale "$SAMPLE/mdm-be/organization-mdm-be.json"
stale=$(main_of stale)
eq "stale edit stands on" "$(git -C stale rev-parse "$stale^")" "$(git -C pnpm rev-parse "$revocation^")"
run 3 cs -C pnpm fetch stale --peer coord
err_has "commit $stale: " "which is revoked" "not in that commit's past" \
	"rejected, kept in quarantine"
eq "pnpm's main after the stale fetch" "$(main_of pnpm)" "$(main_of gadem)"

# --- every node takes the new history and verifies all of it
for n in ms2 cefa; do
	run 0 cs -C "$n" fetch pnpm --peer pnpm
	eq "$n's main" "$(main_of "$n")" "$(main_of pnpm)"
done
# ms2's edit made under the old coordinator is in the history, and still
# verifies: judged as of its parent.
git -C pnpm merge-base --is-ancestor "$ms2_before" main || fail "ms2's old edit is not in main"
ok
run 0 cs -C coord fetch pnpm --peer pnpm
eq "coord's main" "$(main_of coord)" "$(main_of pnpm)"
for n in pnpm ms2 cefa gadem coord; do
	verify_ok "$n" main
done
run 0 cs -C pnpm --json verify main
jq_eq "commits verified on pnpm" .commits "$tmp/out" "$(git -C pnpm rev-list --count main)"
# Every commit of main is signed by a key that stock git knows.
cs -C pnpm keys allowed-signers >signers
for c in $(git -C pnpm rev-list main); do
	git -C pnpm -c gpg.ssh.allowedSignersFile="$tmp/signers" verify-commit "$c" 2>/dev/null ||
		fail "git verify-commit $c"
	ok
done
run 0 cs -C pnpm keys allowed-signers
out_has "# revoked, kept so that old edits still verify:" "pnpm namespaces=\"git\""

# --- the old coordinator key can no longer write
m=$(main_of coord)
run 1 cs -C coord add "$(proposed "$SAMPLE/mdm-be/service-mdm-gbv.json")"
err_has "this node's key cannot write" "$coord_fp" "revoked"
run 0 cs keys generate "$tmp/newkey"
run 1 cs -C coord members add --org ms3 --role member --key newkey.pub
err_has "cannot write" "revoked"
eq "coord's main after refused writes" "$(main_of coord)" "$m"
# ...while a member admitted by the old coordinator still can.
add_sample ms2 "$SAMPLE/ms2/service-ms2-consult.json"
run 0 cs -C pnpm fetch ms2 --peer ms2
eq "pnpm took ms2's new edit" "$(main_of pnpm)" "$(main_of ms2)"
verify_ok pnpm

done_ok
