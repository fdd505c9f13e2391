#!/bin/sh
# A node that meets a protocol version it does not implement stops writing,
# says so, and rejects nothing (docs/sync.md "What a fetch does"): the
# coordinator's history moves to protocol 2 (made here with stock git,
# signed with the coordinator's key, as a newer cartosync would write it);
# ms2 fetches it: the fetch is refused with a clear message, nothing is
# quarantined, main does not move, and ms2 refuses to write until it is
# upgraded; what it holds still verifies.
set -eu
. "$(dirname "$0")/lib.sh"

genesis coord mdm-be root1
join ms2 ms2 coord
add_sample ms2 "$SAMPLE/ms2/organization-ms2.json"
before=$(main_of ms2)

git clone -q coord wt || fail "clone"
printf '{\n  "merge": "cartosync-merge/2",\n  "protocol": 2\n}\n' \
	>wt/consortium/protocol.json
git -C wt add consortium/protocol.json
sign() {
	GIT_AUTHOR_NAME=mdm-be GIT_COMMITTER_NAME=mdm-be \
		GIT_AUTHOR_EMAIL=coord@example.org \
		GIT_COMMITTER_EMAIL=coord@example.org \
		git -C wt -c gpg.format=ssh \
		-c user.signingkey="$tmp/coord/keys/signing_key" \
		commit -q -S --allow-empty -m "$1" || fail "git commit '$1'"
}
sign "Protocol version 2"
sign "An edit of protocol 2"
git -C wt push -q "$tmp/coord" HEAD:refs/heads/main || fail "push"
run 0 cs -C coord verify main
err_has "all valid"

run 1 cs -C ms2 fetch coord --peer coord
err_has "uses protocol version 2" "upgrade"
eq "ms2's main" "$(main_of ms2)" "$before"
[ -d ms2/quarantine ] && fail "a history of a newer protocol was quarantined"
ok
run 1 cs -C ms2 add "$(proposed "$SAMPLE/ms2/service-ms2-consult.json")"
err_has "this node met protocol version 2" "upgrade cartosync before writing"
eq "ms2's main after a refused add" "$(main_of ms2)" "$before"
run 0 cs -C ms2 --json status
jq_eq "status says it" '.upgrade_needed | test("protocol version 2")' \
	"$tmp/out" true
err_has "NOT WRITING"
verify_ok ms2
done_ok
