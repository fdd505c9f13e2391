#!/bin/sh
# A consortium is founded, two partners join and are admitted, each adds
# sample records of its own; list/show/log describe them; cartosync verify
# and stock git (verify-commit, log --show-signature, ssh-keygen) accept
# every commit.
set -eu
. "$(dirname "$0")/lib.sh"

# --- genesis, join, admit, fetch
genesis coord mdm-be root1
err_has "created node 'coord' for mdm-be"
gen=$(main_of coord)
eq "genesis is a root commit" "$(git -C coord rev-list --max-parents=0 main)" "$gen"
eq "genesis pinned in the config" \
	"$(sed -n 's/^genesis = //p' coord/cartosync.conf)" "$gen"
# A bare repository that stock git reads.
eq "coord is a bare repo" "$(git -C coord rev-parse --is-bare-repository)" true
for f in consortium/members.json consortium/policy.json \
	consortium/protocol.json consortium/schema/service.schema.json; do
	git -C coord cat-file -e "main:$f" || fail "genesis lacks $f"
	ok
done
git -C coord show main:consortium/protocol.json >p.json
jq_eq "genesis protocol" .protocol p.json 1

join ms2 ms2 coord
join alcs alcs coord
# alcs's admission came after ms2's: ms2 catches up.
run 0 cs -C ms2 fetch coord --peer coord
eq "ms2 main after second fetch" "$(main_of ms2)" "$(main_of coord)"

run 0 cs -C coord --json members list
jq_eq "members orgs" '.organizations | keys | join(",")' "$tmp/out" "alcs,mdm-be,ms2"
jq_eq "ms2 role" '[.keys[] | select(.org == "ms2") | .role] | join(",")' "$tmp/out" member
jq_eq "coordinator" '[.keys[] | select(.role == "coordinator") | .org] | join(",")' "$tmp/out" mdm-be
run 0 cs -C coord members list
err_has "ms2" "alcs" "coordinator" "root: 1 of 1 keys"

# --- each partner adds its records
for f in "$SAMPLE"/ms2/organization-ms2.json "$SAMPLE"/ms2/service-ms2-consult.json \
	"$SAMPLE"/ms2/location-ms2-oujda.json; do
	add_sample ms2 "$f"
done
for f in "$SAMPLE"/alcs/organization-alcs.json "$SAMPLE"/alcs/service-alcs-prep.json; do
	add_sample alcs "$f"
done

svc=$(jq -r .id "$SAMPLE/ms2/service-ms2-consult.json")
svc_path=$(record_path "$svc" ms2 service)
git -C ms2 cat-file -e "main:$svc_path" || fail "no $svc_path in ms2's main"
ok
# Stored in canonical form: sorted keys, 2-space indent, final newline,
# x_status proposed, everything else as given.
git -C ms2 show "main:$svc_path" >stored.json
jq --indent 2 -S '.x_status = "proposed"' "$SAMPLE/ms2/service-ms2-consult.json" >expected.json
cmp -s stored.json expected.json || {
	diff expected.json stored.json >&2 || true
	fail "stored record differs from the sample (proposed)"
}
ok

# add fills in the envelope: id, x_owner, x_status, x_verified (today, UTC).
jq 'del(.id, .x_owner, .x_status, .x_verified)' "$SAMPLE/ms2/need-ms2-oujda-shelter.json" >bare.json
run 0 cs -C ms2 --json add bare.json
need=$(jq -r .id "$tmp/out")
echo "$need" | grep -Eq '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' ||
	fail "generated id '$need' is not a lowercase v4 UUID"
ok
jq_eq "path of the new need" .path "$tmp/out" "$(record_path "$need" ms2 need)"
run 0 cs -C ms2 --json show "$need"
jq_eq "filled x_owner" .x_owner "$tmp/out" ms2
jq_eq "filled x_status" .x_status "$tmp/out" proposed
jq_eq "filled x_verified" '.x_verified | "\(.date) \(.by) \(.method)"' "$tmp/out" \
	"$(date -u +%Y-%m-%d) ms2 self_report"

# Adding the same record again is refused.
run 1 cs -C ms2 add "$(proposed "$SAMPLE/ms2/service-ms2-consult.json")"
err_has "exists already" "cartosync edit $svc"

# --- list
run 0 cs -C ms2 --json list
jq_eq "ms2 list count" length "$tmp/out" 4
run 0 cs -C ms2 --json list --type service
jq_eq "ms2 services" '[.[].id] | join(",")' "$tmp/out" "$svc"
run 0 cs -C ms2 --json list --owner alcs
jq_eq "ms2 does not hold alcs' records yet" length "$tmp/out" 0
run 0 cs -C ms2 list
err_has "$svc" "Consultations psychologiques" "proposed" "4 records"
run 0 cs -C alcs --json list --status proposed
jq_eq "alcs proposed" length "$tmp/out" 2
run 0 cs -C alcs --json list --status published
jq_eq "alcs published" length "$tmp/out" 0
run 0 cs -C ms2 --json list --text PSYCHOLOGIQUES
jq_eq "text filter, any case" '[.[].id] | join(",")' "$tmp/out" "$svc"
run 2 cs -C ms2 list --type person
err_has "not a record type"

# --- show
run 0 cs -C ms2 --json show "$svc"
jq_eq "show name" .name "$tmp/out" "Consultations psychologiques"
jq_eq "show owner" .x_owner "$tmp/out" ms2
jq_eq "show status" .x_status "$tmp/out" proposed
jq_eq "show categories" '.x_categories | join(",")' "$tmp/out" mhpss
run 0 cs -C ms2 show "$svc"
err_has "Consultations psychologiques" "service $svc, owner ms2, proposed" "$svc_path"
[ ! -s "$tmp/out" ] || fail "show without --json writes to stdout"
ok
run 1 cs -C ms2 show 00000000-0000-4000-8000-000000000000
err_has "no record"

# --- log
run 0 cs -C ms2 --json log
jq_eq "log length" length "$tmp/out" "$(git -C ms2 rev-list --count main)"
jq_eq "log newest first" '.[0].commit' "$tmp/out" "$(main_of ms2)"
jq_eq "log oldest is the genesis" '.[-1].commit' "$tmp/out" "$gen"
jq_eq "log orgs" '[.[].org] | unique | join(",")' "$tmp/out" "mdm-be,ms2"
jq_eq "log kinds" '[.[].kind] | unique | join(",")' "$tmp/out" edit
run 0 cs -C ms2 --json log "$svc"
jq_eq "record log" 'map(.message) | join("|")' "$tmp/out" "Add service $svc"
run 0 cs -C ms2 --json log -n 2
jq_eq "log -n 2" length "$tmp/out" 2
run 0 cs -C ms2 log
err_has "Genesis of the consortium" "Add service $svc" "Admit a member key of ms2"

# --- verification by cartosync
for n in coord ms2 alcs; do
	verify_ok "$n"
	verify_ok "$n" main
done
run 0 cs -C ms2 --json verify
jq_eq "verify json valid" .valid "$tmp/out" true
jq_eq "verify json commits" .commits "$tmp/out" "$(git -C ms2 rev-list --count main)"
jq_eq "verify json invalid" '.invalid | length' "$tmp/out" 0

# The coordinator brings in ms2's history (fast-forward), then alcs' diverges.
run 0 cs -C coord fetch ms2 --peer ms2
eq "coord fast-forwarded to ms2" "$(main_of coord)" "$(main_of ms2)"
run 0 cs -C coord fetch alcs --peer alcs
git -C coord rev-parse --verify -q refs/peers/alcs/main >/dev/null ||
	fail "alcs' history is not kept as refs/peers/alcs/main"
ok
verify_ok coord

# --- stock git and ssh-keygen read what cartosync writes
for n in ms2 alcs coord; do
	cs -C "$n" keys allowed-signers >"$n.signers" || fail "allowed-signers of $n"
	count=0
	# Every signed edit; merges are unsigned by design (docs/protocol.md).
	for c in $(git -C "$n" rev-list --no-merges main); do
		git -C "$n" -c gpg.ssh.allowedSignersFile="$tmp/$n.signers" \
			verify-commit "$c" 2>vc.err ||
			{ cat vc.err >&2; fail "git verify-commit $c on $n"; }
		ok
		count=$((count + 1))
	done
	[ "$count" -ge 3 ] || fail "only $count commits on $n's main"
	git -C "$n" -c gpg.ssh.allowedSignersFile="$tmp/$n.signers" \
		log --show-signature --format='%H %an' main >sig.log 2>&1
	good=$(grep -c '^Good "git" signature for ' sig.log || true)
	eq "Good signatures on $n" "$good" "$count"
	# git's words for a problem, not parts of commit ids ("…cebad1…").
	if grep -qiw 'bad\|no signature\|can.t' sig.log; then
		cat sig.log >&2
		fail "git log --show-signature on $n reports a problem"
	fi
	ok
	# Commit identity rule: author = committer = the signer's organisation.
	git -C "$n" log --no-merges --format='%an %cn' main | while read -r an cn; do
		[ "$an" = "$cn" ] || fail "author $an != committer $cn on $n"
		case $an in mdm-be | ms2 | alcs) ;; *) fail "author '$an' on $n" ;; esac
	done
done
git -C ms2 -c gpg.ssh.allowedSignersFile="$tmp/ms2.signers" \
	log --show-signature -1 main >sig.log 2>&1
grep -q "^Good \"git\" signature for ms2 with ED25519 key $(fingerprint ms2)\$" sig.log ||
	{ cat sig.log >&2; fail "no Good signature for ms2 on ms2's last edit"; }
ok

# keys public: the OpenSSH line is what ssh-keygen reads; the key part is
# the public half of DIR/keys/signing_key.
for n in coord ms2 alcs; do
	run 0 cs -C "$n" keys public
	head -n 1 "$tmp/out" >"$n.line"
	ssh-keygen -l -f "$n.line" >fp.out 2>&1 || { cat fp.out >&2; fail "ssh-keygen -l rejects keys public of $n"; }
	ok
	grep -q 'ED25519' fp.out || fail "keys public of $n is not an Ed25519 key"
	ok
	eq "fingerprint of keys public of $n" "$(cut -d' ' -f2 fp.out)" "$(fingerprint "$n")"
	ssh-keygen -y -f "$n/keys/signing_key" >y.out 2>&1 || { cat y.out >&2; fail "ssh-keygen -y on $n"; }
	eq "key part of keys public of $n" "$(cut -d' ' -f1,2 "$n.line")" "$(cut -d' ' -f1,2 y.out)"
	perm=$(ls -l "$n/keys/signing_key" | cut -c1-10)
	eq "mode of $n's signing key" "$perm" "-rw-------"
	run 0 cs -C "$n" --json keys public
	jq_eq "keys public --json fingerprint of $n" .fingerprint "$tmp/out" "$(fingerprint "$n")"
done
run 0 cs -C ms2 keys public
out_has " ms2 tls=sha256:"
run 0 cs -C ms2 keys allowed-signers
out_has "ms2 namespaces=\"git\" $(cut -d' ' -f1,2 ms2.line)" \
	"mdm-be namespaces=\"git\" $(cut -d' ' -f1,2 coord.line)" \
	"root namespaces=\"git\" $(cut -d' ' -f1,2 root1.pub)"

done_ok
