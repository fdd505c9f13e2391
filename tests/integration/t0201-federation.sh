#!/bin/sh
# Six nodes on loopback converge through real daemons (docs/sync.md
# "Topology"): the coordinator's hub serves; dj serves too and the hub
# fetches it; ms2 and cefa run the daemon behind NAT (nobody can reach
# them: they push); alcs and gadem have only the command line behind NAT.
# Everyone joins the hub over HTTPS with a token, each adds records, the
# hub and dj edit the same field of a shared record at once.  Then every
# node has the same main, the conflict is listed everywhere, every node
# verifies, and alcs's record (pushed to the hub only) reached dj (which
# talks only to the hub).  Before that, two nodes converge alone, then
# three.  Last, alcs packs its store when it syncs.
set -eu
. "$(dirname "$0")/lib.sh"

genesis hub mdm-be root1
serve hub
sync_every hub 1
daemon_start hub
URL=$(url_of hub)
run 0 cs -C hub keys join-token
TOKEN=$(cat "$tmp/out")

# join ORG [serve]: a node joins the hub over HTTPS and is admitted
join_hub() {
	run 0 cs -C "$1" init --org "$1" --join "$URL" --token "$TOKEN"
	err_has "does not know this node yet" "to be admitted"
	cs -C "$1" keys public >"$tmp/$1.pub" || fail "keys public of $1"
	run 0 cs -C hub members add --org "$1" --role member --key "$tmp/$1.pub"
}

# --- two nodes: ms2 (daemon behind NAT) and the hub
join_hub ms2
sync_every ms2 1
daemon_start ms2
wait_until 30 "ms2 gets the history" git -C ms2 rev-parse -q --verify main
add_sample ms2 "$SAMPLE/ms2/organization-ms2.json"
wait_until 30 "ms2 and the hub converge" same_main hub ms2
ms2_record=$(jq -r .id "$SAMPLE/ms2/organization-ms2.json")
run 0 cs -C hub show "$ms2_record"

# --- three: dj serves and the hub fetches it
join_hub dj
serve dj
sync_every dj 1
daemon_start dj
wait_until 30 "dj gets the history" git -C dj rev-parse -q --verify main
run 0 cs -C hub peers add dj "$(url_of dj)" --org dj
kill -HUP "$(daemon_pid hub)"
add_sample dj "$SAMPLE/dj/organization-dj.json"
wait_until 30 "hub, ms2 and dj converge" same_main hub ms2 dj

# --- six: cefa (daemon, NAT), alcs and gadem (command line only, NAT)
join_hub cefa
sync_every cefa 1
daemon_start cefa
wait_until 30 "cefa gets the history" git -C cefa rev-parse -q --verify main
join_hub alcs
join_hub gadem
run 0 cs -C alcs sync
# alcs holds nothing the hub lacks: its main, the hub's, is not pushed back.
err_lacks "pushed main"
run 0 cs -C gadem sync
# cefa's daemon brings in the hub's admissions of alcs and gadem; adding
# while it does would merge (main moved under the add).
wait_until 30 "cefa gets the admissions" same_main hub cefa
add_sample cefa "$SAMPLE/cefa/organization-cefa.json"
add_sample alcs "$SAMPLE/alcs/organization-alcs.json"
printf '%s' '{"x_record_type":"organization","x_owner":"gadem","name":"GADEM","description":"Groupe antiraciste d'"'"'accompagnement et de défense des étrangers et migrants"}' >gadem.json
run 0 cs -C gadem --json add gadem.json
gadem_record=$(jq -r .id "$tmp/out")
alcs_record=$(jq -r .id "$SAMPLE/alcs/organization-alcs.json")

# A shared record, then the hub and dj change its description at once.
printf '%s' '{"x_record_type":"organization","x_owner":"shared","name":"Hôpital Al Farabi","description":"Oujda"}' >shared.json
run 0 cs -C hub --json add shared.json
shared=$(jq -r .id "$tmp/out")
wait_until 30 "dj has the shared record" cs -C dj show "$shared"
cat >"$tmp/ed.sh" <<'E'
#!/bin/sh
jq --arg v "$V" '.description = $v' "$1" >"$1.t" && mv "$1.t" "$1"
E
chmod +x "$tmp/ed.sh"
V="Oujda, urgences 24h/24" EDITOR=$tmp/ed.sh run 0 cs -C hub edit "$shared"
V="Oujda (fermé le dimanche)" EDITOR=$tmp/ed.sh run 0 cs -C dj edit "$shared"

all="hub ms2 dj cefa alcs gadem"
converged() {
	cs -C alcs sync && cs -C gadem sync && same_main $all
}
wait_until 90 "the six nodes converge" converged
for n in $all; do
	run 0 cs -C "$n" show "$alcs_record"
	run 0 cs -C "$n" show "$gadem_record"
	run 0 cs -C "$n" --json conflicts
	jq_eq "the conflict listed on $n" \
		"[.[] | select(.id == \"$shared\")] | length" "$tmp/out" 1
	verify_ok "$n" main
done
# alcs reached dj only through the hub (dj has no peer but the hub).
run 0 cs -C dj --json peers
jq_eq "dj's peers" '[.[].name] | join(",")' "$tmp/out" hub
# The hub's status shows each peer's last success.
run 0 cs -C hub --json status
jq_eq "the hub fetched dj" '.peers.dj.last_error' "$tmp/out" null
jq_eq "pushes (every partner joined with push = yes)" \
	'[.heads | keys[] | select(startswith("refs/incoming/"))] | join(",")' \
	"$tmp/out" "refs/incoming/alcs/main,refs/incoming/cefa/main,refs/incoming/dj/main,refs/incoming/gadem/main,refs/incoming/ms2/main"

# --- alcs, run only with the command, packs its store when it syncs
# many FILE COUNT: COUNT new blobs in alcs's store, listed in FILE
many() {
	mkdir -p "$tmp/$1.d"
	for i in $(seq 1 "$2"); do
		echo "{\"$1\": $i}" >"$tmp/$1.d/$i.json"
	done
	ls "$tmp/$1.d"/*.json | git -C alcs hash-object -w --stdin-paths >"$tmp/$1"
}
loose() {
	git -C alcs count-objects -v | sed -n 's/^count: //p'
}
# Objects nobody references stay loose, and ask for one packing only.
many unreferenced 300
# No git to pack with: said, and the sync itself still succeeds.
run 0 env PATH=/nonexistent "$CARTOSYNC" -C alcs sync
err_has "cartosync: packing the store: cannot run git" "main stays"
run 0 cs -C alcs sync
err_has "store: loose objects packed"
[ "$(loose)" -ge 300 ] || fail "alcs packed unreferenced objects"
ok
run 0 cs -C alcs sync
err_lacks "store:"
# Referenced ones are packed.
many referenced 300
tree=$(awk '{printf "100644 blob %s\t%d.json\n", $1, NR}' "$tmp/referenced" |
	git -C alcs mktree)
many_commit=$(git -C alcs -c user.name=tester -c user.email=t@example.org \
	commit-tree -m many "$tree") || fail "git commit-tree in alcs"
git -C alcs update-ref refs/test/many "$many_commit"
run 0 cs -C alcs sync
err_has "store: loose objects packed"
[ "$(loose)" -lt 320 ] || fail "alcs has $(loose) loose objects after packing"
ok
git -C alcs cat-file --batch-check <"$tmp/referenced" | grep -v " blob " &&
	fail "a packed object of alcs is missing"
ok
fsck_ok alcs
verify_ok alcs main
done_ok
