#!/bin/sh
# A chain: A <-> B <-> C, A and C never talk.  Each serves and fetches only
# its neighbours; edits made at both ends reach the other end through B
# (every node serves what it has merged), and all three converge on the
# same main and verify.
set -eu
. "$(dirname "$0")/lib.sh"

genesis a mdm-be root1
serve a
daemon_start a
TOKEN_A=$(cs -C a keys join-token) || fail "join-token"

# b joins a; c joins b
run 0 cs -C b init --org ms2 --join "$(url_of a)" --token "$TOKEN_A"
cs -C b keys public >"$tmp/ms2.pub" || fail "keys public of b"
run 0 cs -C a members add --org ms2 --role member --key "$tmp/ms2.pub"
run 0 cs -C b sync
serve b
daemon_start b
run 0 cs -C c init --org alcs --join "$(url_of b)" \
	--token "$(cs -C b keys join-token)"
cs -C c keys public >"$tmp/alcs.pub" || fail "keys public of c"
run 0 cs -C a members add --org alcs --role member --key "$tmp/alcs.pub"
# the admission travels a -> b (b fetches a), then c can fetch b
run 0 cs -C b sync
run 0 cs -C c sync
serve c
daemon_start c

# Peers: a fetches b; b fetches a and c; c fetches b.  Nobody pushes.
run 0 cs -C a peers add ms2 "$(url_of b)" --org ms2
for n in b c; do
	sed -i 's/^push = yes/push = no/' "$n/cartosync.conf"
done
run 0 cs -C b peers add alcs "$(url_of c)" --org alcs
for n in a b c; do
	sync_every "$n" 1
	kill -HUP "$(daemon_pid "$n")"
done

add_sample a "$SAMPLE/mdm-be/organization-mdm-be.json"
add_sample c "$SAMPLE/alcs/organization-alcs.json"
wait_until 60 "a, b and c converge" same_main a b c
run 0 cs -C a show "$(jq -r .id "$SAMPLE/alcs/organization-alcs.json")"
run 0 cs -C c show "$(jq -r .id "$SAMPLE/mdm-be/organization-mdm-be.json")"
for n in a b c; do verify_ok "$n" main; done
# a never heard of c, nor c of a.
run 0 cs -C a --json peers
jq_eq "a's peers" '[.[].name] | join(",")' "$tmp/out" ms2
run 0 cs -C c --json peers
jq_eq "c's peers" '[.[].name] | join(",")' "$tmp/out" hub
done_ok
