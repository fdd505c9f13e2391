#!/bin/sh
# Faults on real daemons (docs/sync.md "What a fetch does", docs/
# architecture.md "Writing"): nothing acknowledged is lost, nothing half
# written stays, and syncing resumes.
#
# The hub holds a long history (1,800 records in 30 signed commits, made
# with stock git's formats by tools/mkhistory.py); ms2 joins it over HTTPS
# through tools/proxy.py, which can slow or stall what the hub sends.
#  1. kill -9 while ms2's daemon fetches (a staging store is left), then
#     kill -9 the hub while it serves the next fetch; `cartosync add`
#     killed -9 at points spread over its run; `cartosync merge` killed -9
#     at points spread over its run; the hub's daemon killed -9 while it
#     integrates a push.  After each: git fsck --strict is clean, every
#     commit an add acknowledged is held, no staging store outlives the
#     next fetch, and the nodes converge.
#  2. A peer that stalls mid-transfer: its work process killed, the daemon
#     records the failure and retries; with [sync] deadline = 3 the round
#     fails with a deadline error (daemon log and `cartosync status`); once
#     the stall is gone the next round succeeds.
#  3. Disk full (a node on a small tmpfs): a fetch and `cartosync add` fail
#     with a clear error and leave the node as it was (main, fsck, verify,
#     free space); once space is freed they succeed.
set -eu
. "$(dirname "$0")/lib.sh"

TOOLS=$libdir/tools
[ -x "$CARTOSYNCD" ] || fail "CARTOSYNCD='$CARTOSYNCD' is not an executable"
GIT_TERMINAL_PROMPT=0
export GIT_TERMINAL_PROMPT

mounted=
cleanup() {
	if [ -n "$mounted" ]; then
		umount "$mounted" 2>/dev/null || umount -l "$mounted" 2>/dev/null || true
	fi
	cleanup_story
}
trap cleanup EXIT

# ------------------------------------------------------------------ helpers

now_ms() {
	date +%s%3N
}

# staging_empty NODE WHEN: check no_staging
staging_empty() {
	if ! no_staging "$1"; then
		ls -la "$1/staging" >&2
		fail "$2: staging stores left in $1/staging"
	fi
	ok
}

# holds NODE COMMIT: COMMIT is in the history of one of NODE's refs
holds() {
	[ -n "$(git -C "$1" for-each-ref --contains "$2" --format=x 2>/dev/null)" ]
}

# acked_held NODE WHEN: every acknowledged commit is held by NODE
acked_held() {
	while read -r c; do
		holds "$1" "$c" || fail "$2: the acknowledged edit $c is not held by $1"
		ok
	done <"$tmp/acked"
}

# acked_in_main NODE WHEN: every acknowledged commit is in NODE's main
acked_in_main() {
	while read -r c; do
		git -C "$1" merge-base --is-ancestor "$c" refs/heads/main 2>/dev/null ||
			fail "$2: the acknowledged edit $c is not in $1's main"
		ok
	done <"$tmp/acked"
}

# all_acked_in_main NODE: the same as a test, quietly
all_acked_in_main() {
	while read -r c; do
		git -C "$1" merge-base --is-ancestor "$c" refs/heads/main ||
			return 1
	done <"$tmp/acked"
}

# ack NODE FILE: cartosync --json add FILE, acknowledged: its commit noted
n_rec=0
ack() {
	run 0 cs -C "$1" --json add "$2"
	jq -r .commit "$tmp/out" >>"$tmp/acked"
}

# record ORG: a new organization record of ORG, in a file whose path is
# printed
record() {
	n_rec=$((n_rec + 1))
	printf '{"x_record_type":"organization","name":"%s fault %d","description":"written while things break (%d)"}\n' \
		"$1" "$n_rec" "$n_rec" >"$tmp/rec$n_rec.json"
	echo "$tmp/rec$n_rec.json"
}

# stop NODE: SIGTERM the node's daemon and wait for it
stop() {
	s_pid=$(daemon_pid "$1")
	kill -TERM "$s_pid"
	wait "$s_pid" || fail "cartosyncd on $1 exited $? on SIGTERM"
	ok
}

# kill9 NODE: SIGKILL the node's daemon and reap it
kill9() {
	k_pid=$(daemon_pid "$1")
	kill -9 "$k_pid" || fail "the daemon of $1 was not running"
	wait "$k_pid" 2>/dev/null || true
	ok
}

# proxy_to NODE: the proxy forwards to NODE's serving address
proxy_to() {
	u=$(url_of "$1")
	u=${u#https://}
	echo "${u%/}" >"$tmp/px/target"
}

# proxy_down BYTES: some connection relayed at least BYTES (a multiple of
# 64 KiB) since the proxy log was marked with proxy_mark
proxy_mark() {
	px_mark=$(wc -l <"$tmp/px/log")
}
proxy_down() {
	tail -n +"$((px_mark + 1))" "$tmp/px/log" | grep -q " down $1\$"
}

# staged_by NODE PID: NODE/staging holds a staging store of process PID
staged_by() {
	ls "$1/staging" 2>/dev/null | grep -q -- "-$2-"
}

: >"$tmp/acked"

# ------------------------------------------------------------------ the nodes

genesis hub mdm-be root
# A long history, brought in as any history is: fetched, verified, kept.
git clone -q --bare hub gen || fail "git clone --bare hub"
$PY "$TOOLS/mkhistory.py" gen mdm-be hub/keys/signing_key 30 60 600 >"$tmp/big" ||
	fail "mkhistory.py"
run 0 cs -C hub fetch gen --peer gen
eq "the hub's main after the long history" "$(main_of hub)" "$(cat "$tmp/big")"
serve hub
sync_conf hub
daemon_start hub
run 0 cs -C hub keys join-token
TOKEN=$(cat "$tmp/out")

mkdir "$tmp/px"
echo pass >"$tmp/px/mode"
proxy_to hub
$PY "$TOOLS/proxy.py" "$tmp/px" &
echo $! >>"$tmp/daemons.pids"
wait_until 10 "the proxy listens" test -s "$tmp/px/port"
PURL=https://127.0.0.1:$(cat "$tmp/px/port")/

run 0 cs -C ms2 init --org ms2 --join "$PURL" --token "$TOKEN"
err_has "does not know this node yet"
cs -C ms2 keys public >"$tmp/ms2.pub" || fail "keys public of ms2"
run 0 cs -C hub members add --org ms2 --role member --key "$tmp/ms2.pub"
sync_conf ms2 deadline 600

# ------------------------------------------------------------------ 1. kill -9

# 1a. ms2's daemon killed while it receives the hub's pack (slowed).
echo "slow 120000" >"$tmp/px/mode"
proxy_mark
daemon_start ms2
wait_until 60 "ms2 receives the hub's pack" proxy_down 262144
# The daemon fetches in a work process of its own (docs/daemon.md).
pid=$(pgrep -P "$(daemon_pid ms2)" -f -- "--work") ||
	fail "ms2's daemon fetches, but runs no work process"
staged_by ms2 "$pid" || fail "ms2 fetches, but no staging store of its daemon"
ok
kill9 ms2
wait_until 10 "the work process dies with the daemon" sh -c "! kill -0 $pid"
staged_by ms2 "$pid" ||
	fail "the killed fetch left no staging store: the kill did not land mid-transfer"
ok
git -C ms2 rev-parse -q --verify refs/heads/main >/dev/null &&
	fail "ms2 has a main after a fetch killed mid-transfer"
ok
fsck_ok ms2

# 1b. The hub's daemon killed while it serves the next fetch: as soon as
# its git upload-pack starts on ms2's request.
echo pass >"$tmp/px/mode"
$PY "$TOOLS/killon.py" "$tmp/hub.log" "serve: ms2 upload-pack started" \
	"$(daemon_pid hub)" 0 >"$tmp/killon.out" 2>&1 &
kpid=$!
echo "$kpid" >>"$tmp/daemons.pids"
wait_until 10 "killon.py watches the hub's log" grep -q watching "$tmp/killon.out"
mark=$(wc -l <"$tmp/hub.log")
daemon_start ms2
wait "$kpid" || { cat "$tmp/killon.out" >&2; fail "the hub was not killed during ms2's fetch"; }
ok
wait "$(daemon_pid hub)" 2>/dev/null || true
tail -n +"$((mark + 1))" "$tmp/hub.log" | grep -qF "serve: ms2 upload-pack done" &&
	fail "the hub finished serving the pack before the kill"
ok
wait_until 30 "ms2 reports the lost hub" log_has ms2 "; retrying in"
staged_by ms2 "$pid" &&
	fail "the staging store of the killed daemon outlived the next fetch"
ok
wait_until 30 "ms2 removes the staging store of the failed fetch" no_staging ms2
ok
git -C ms2 rev-parse -q --verify refs/heads/main >/dev/null &&
	fail "ms2 has a main after a fetch cut by the hub's death"
ok
run 0 cs -C ms2 --json status
jq_eq "ms2's status after the hub died mid-transfer" \
	'.peers.hub.last_error | type' "$tmp/out" string
fsck_ok ms2
fsck_ok hub

# The hub comes back (on another port: the proxy follows), the proxy stops
# slowing: the next round completes.
daemon_start hub
proxy_to hub
echo pass >"$tmp/px/mode"
wait_until 60 "ms2 gets the hub's history after the faults" same_main hub ms2
wait_until 10 "ms2 leaves no staging store after a fetch" no_staging ms2
ok
fsck_ok ms2
fsck_ok hub
verify_ok ms2 main

# 1c. `cartosync add` killed -9 from outside at points spread over its run
# (ms2's daemon runs meanwhile).  Every add that said so is kept; the next
# add works (no lock left behind).
t0=$(now_ms)
ack ms2 "$(record ms2)"
took=$(($(now_ms) - t0))
killed=0
for k in 1 2 3 4 5 6 7 8; do
	f=$(record ms2)
	"$CARTOSYNC" -C ms2 --json add "$f" >"$tmp/add.out" 2>"$tmp/add.err" &
	apid=$!
	sleep "$(echo "$took $k" | awk '{printf "%.3f", $1 * $2 / 9000}')"
	kill -9 "$apid" 2>/dev/null || true
	rc=0
	wait "$apid" 2>/dev/null || rc=$?
	case $rc in
	0) jq -r .commit "$tmp/add.out" >>"$tmp/acked" ;;
	137) killed=$((killed + 1)) ;;
	*) cat "$tmp/add.err" >&2; fail "an add exited $rc (not killed)" ;;
	esac
done
fsck_ok ms2
say "add: $killed of 8 runs killed before they acknowledged"
[ "$killed" -ge 1 ] || fail "no add was killed while it ran (each took ${took} ms)"
ok
# A writer killed while it held main's lock file (libgit2's main.lock)
# leaves it behind: the next writer, holding the node's lock, removes it.
: >ms2/refs/heads/main.lock
ack ms2 "$(record ms2)"
[ -e ms2/refs/heads/main.lock ] && fail "a stale main.lock outlived an add"
ok
ack ms2 "$(record ms2)"
verify_ok ms2 main
acked_held ms2 "after adds killed -9"
wait_until 60 "ms2 and the hub converge after the killed adds" same_main hub ms2
acked_in_main hub "after adds killed -9"
stop ms2

# 1d. `cartosync merge` killed -9 at points spread over its run.  A merge
# is due: ms2 and the hub each have an edit the other lacks.
run 0 cs -C hub add "$(record mdm-be)"
ack ms2 "$(record ms2)"
run 0 cs -C ms2 fetch "$tmp/hub" --peer hub --no-merge
before=$(main_of ms2)
# The same merge, run to its end on a copy, says how long it takes and
# what main becomes (main is a function of what is held).
cp -a ms2 ms2-copy || fail "cp -a ms2"
t0=$(now_ms)
run 0 cs -C ms2-copy merge
took=$(($(now_ms) - t0))
merged=$(main_of ms2-copy)
ne "main after the merge" "$merged" "$before"
eq "parents of the merge" "$(git -C ms2-copy rev-list --parents -n 1 "$merged" | wc -w)" 3
killed=0
for k in 1 2 3 4 5 6; do
	"$CARTOSYNC" -C ms2 merge >/dev/null 2>"$tmp/merge.err" &
	mpid=$!
	sleep "$(echo "$took $k" | awk '{printf "%.3f", $1 * $2 / 7000}')"
	kill -9 "$mpid" 2>/dev/null || true
	rc=0
	wait "$mpid" 2>/dev/null || rc=$?
	now=$(main_of ms2)
	case $rc in
	137)
		killed=$((killed + 1))
		[ "$now" = "$before" ] || [ "$now" = "$merged" ] ||
			fail "main is $now after a merge killed -9 (neither $before nor $merged)"
		ok
		;;
	0)
		eq "main after a merge that finished" "$now" "$merged"
		# Back to the state before, to kill the next one.
		git -C ms2 update-ref refs/heads/main "$before" "$merged" ||
			fail "cannot put main back"
		;;
	*) cat "$tmp/merge.err" >&2; fail "a merge exited $rc (not killed)" ;;
	esac
done
fsck_ok ms2
say "merge: $killed of 6 runs killed before they ended (a merge takes ${took} ms)"
[ "$killed" -ge 1 ] || fail "no merge was killed while it ran"
ok
run 0 cs -C ms2 merge
eq "main after the killed merges and one to the end" "$(main_of ms2)" "$merged"
acked_held ms2 "after merges killed -9"
fsck_ok ms2
verify_ok ms2 main

# 1e. The hub's daemon killed -9 while it integrates a push.
landed=0
for d in 0.2 0.05 0; do
	ack ms2 "$(record ms2)"
	$PY "$TOOLS/killon.py" "$tmp/hub.log" "sync: a push from ms2 arrived" \
		"$(daemon_pid hub)" "$d" >"$tmp/killon.out" 2>&1 &
	kpid=$!
	echo "$kpid" >>"$tmp/daemons.pids"
	wait_until 10 "killon.py watches the hub's log" grep -q watching "$tmp/killon.out"
	mark=$(wc -l <"$tmp/hub.log")
	set +e
	cs -C ms2 sync hub >"$tmp/out" 2>"$tmp/err"
	set -e
	wait "$kpid" || { cat "$tmp/killon.out" >&2; fail "the hub was not killed after the push"; }
	ok
	wait "$(daemon_pid hub)" 2>/dev/null || true
	if ! tail -n +"$((mark + 1))" "$tmp/hub.log" |
		grep -qF "integrate (a push arrived): main is now"; then
		landed=$((landed + 1))
	fi
	fsck_ok hub
	acked_held hub "after the hub was killed integrating a push"
	daemon_start hub
	proxy_to hub
done
say "push: $landed of 3 kills landed before the hub's integration ended"
[ "$landed" -ge 1 ] || fail "no kill landed while the hub integrated a push"
ok
# Every push arrived before its kill.  A push the hub did not finish
# integrating is integrated when it starts again: ms2 has no reason to
# push the same main twice.
wait_until 30 "the restarted hub integrates the pushes it received" \
	all_acked_in_main hub
daemon_start ms2
wait_until 60 "ms2 and the hub converge after the hub's deaths" same_main hub ms2
acked_in_main hub "after the kills"
acked_in_main ms2 "after the kills"
for n in hub ms2; do
	fsck_ok "$n"
	wait_until 10 "no staging store left on $n after the kills" no_staging "$n"
	verify_ok "$n" main
done

# ------------------------------------------------------------------ 2. stall

# The hub grows by 480 records; the proxy stalls every connection after
# 100,000 bytes from the hub.  With a 3 s deadline ms2's round fails.
set_conf ms2 deadline 3
kill -HUP "$(daemon_pid ms2)"
wait_until 10 "ms2 re-reads its configuration" log_has ms2 "SIGHUP: re-reading"
echo "stall 100000" >"$tmp/px/mode"
git clone -q --bare hub gen2 || fail "git clone --bare hub"
$PY "$TOOLS/mkhistory.py" gen2 mdm-be hub/keys/signing_key 8 60 600 >"$tmp/big2" ||
	fail "mkhistory.py"
ms2_before=$(main_of ms2)
run 0 cs -C hub fetch gen2 --peer gen
wait_until 30 "the proxy stalls ms2's fetch" grep -q "stalled after 100000" "$tmp/px/log"
# The work process alone killed mid-transfer: the daemon lives on, and
# records the failure for the peer (the work could not).
wpid=$(pgrep -P "$(daemon_pid ms2)" -f -- "--work") ||
	fail "no work process while ms2's fetch stalls"
kill -9 "$wpid"
wait_until 10 "ms2 logs its killed round" log_has ms2 \
	"peer hub (mdm-be): the work process was killed by signal 9; retrying in"
kill -0 "$(daemon_pid ms2)" || fail "ms2's daemon died with its work process"
run 0 cs -C ms2 --json status
jq_eq "ms2's last error after its work process was killed" \
	'.peers.hub.last_error' "$tmp/out" "the work process was killed by signal 9"
# The next round stalls too, and fails at the deadline.
wait_until 30 "the proxy stalls ms2's next fetch" sh -c \
	"[ \$(grep -c 'stalled after 100000' '$tmp/px/log') -ge 2 ]"
t0=$(now_ms)
wait_until 20 "ms2's round fails at the deadline" \
	log_has ms2 "no complete answer within 3 s; retrying in"
took=$(($(now_ms) - t0))
[ "$took" -le 6000 ] || fail "the stalled round failed $took ms after the stall (deadline 3 s)"
ok
grep -F "no complete answer within 3 s" "$tmp/ms2.log" | grep -qF "peer hub (mdm-be): " ||
	fail "the deadline error does not name the peer"
ok
run 0 cs -C ms2 status
err_has "failing since" "no complete answer within 3 s"
run 0 cs -C ms2 --json status
jq_eq "ms2's last error" '.peers.hub.last_error | test("no complete answer within 3 s")' \
	"$tmp/out" true
eq "ms2's main while the hub stalls" "$(main_of ms2)" "$ms2_before"
git -C ms2 cat-file -e "$(cat "$tmp/big2")" 2>/dev/null &&
	fail "ms2 kept objects of a stalled transfer"
ok
# The stall is gone: the next round succeeds.
echo pass >"$tmp/px/mode"
wait_until 60 "ms2 gets the hub's history once the stall is gone" same_main hub ms2
git -C ms2 merge-base --is-ancestor "$(cat "$tmp/big2")" main ||
	fail "ms2's main lacks the hub's new history"
ok
wait_until 10 "ms2's status clears" sh -c \
	"'$CARTOSYNC' -C ms2 --json status | jq -e '.peers.hub.last_error == null'"
wait_until 10 "ms2 says the hub is back" log_has ms2 "peer hub (mdm-be): reachable again after"
stop ms2
staging_empty ms2 "after the stall"
fsck_ok ms2

# ------------------------------------------------------------------ 3. disk full

URL=$(url_of hub)
mkdir disk
if ! mount -t tmpfs -o size=16m tmpfs "$tmp/disk" 2>"$tmp/mount.err"; then
	say "SKIPPED: the disk-full part: 'mount -t tmpfs' was refused: $(cat "$tmp/mount.err")"
	done_ok
fi
mounted=$tmp/disk
join disk/cefa cefa hub
run 0 cs -C disk/cefa peers add hub "$URL" --org mdm-be
ack disk/cefa "$(record cefa)"
cefa_record=$(jq -r .id "$tmp/out")
run 0 cs -C disk/cefa sync hub
cefa_main=$(main_of disk/cefa)
git clone -q --bare hub gen3 || fail "git clone --bare hub"
$PY "$TOOLS/mkhistory.py" gen3 mdm-be hub/keys/signing_key 6 60 600 >"$tmp/big3" ||
	fail "mkhistory.py"
run 0 cs -C hub fetch gen3 --peer gen

# disk_free: bytes available on the tmpfs
disk_free() {
	df --output=avail -B1 "$tmp/disk" | tail -n 1 | tr -d ' '
}
# Leave 48 KiB: less than the hub's new history.
avail=$(disk_free)
head -c "$((avail - 49152))" /dev/zero >disk/fill 2>/dev/null || true
left=$(disk_free)
say "disk: $left bytes free"
run 1 cs -C disk/cefa sync hub
err_has "No space left on device"
say "fetch with 48 KiB free: $(cat "$tmp/err")"
eq "cefa's main after a fetch on a full disk" "$(main_of disk/cefa)" "$cefa_main"
git -C disk/cefa cat-file -e "$(cat "$tmp/big3")" 2>/dev/null &&
	fail "cefa holds the hub's new history after a fetch that failed"
ok
staging_empty disk/cefa "after a fetch on a full disk"
fsck_ok disk/cefa
verify_ok disk/cefa main
now_free=$(disk_free)
[ "$now_free" -ge "$((left - 8192))" ] ||
	fail "a failed fetch left $((left - now_free)) bytes behind on the full disk"
ok

# Not a byte left: adding fails, nothing changes, reading works.
head -c 64M /dev/zero >disk/fill2 2>/dev/null || true
eq "bytes free on the full disk" "$(disk_free)" 0
run 1 cs -C disk/cefa --json add "$(record cefa)"
err_has "No space left on device"
say "add with 0 bytes free: $(cat "$tmp/err")"
eq "cefa's main after an add on a full disk" "$(main_of disk/cefa)" "$cefa_main"
run 1 cs -C disk/cefa sync hub
err_has "No space left on device"
say "fetch with 0 bytes free: $(cat "$tmp/err")"
eq "cefa's main after a fetch on a full disk" "$(main_of disk/cefa)" "$cefa_main"
fsck_ok disk/cefa
verify_ok disk/cefa main
run 0 cs -C disk/cefa show "$cefa_record"
acked_held disk/cefa "on a full disk"

# Space again: the same operations succeed.
rm -f disk/fill disk/fill2
ack disk/cefa "$(record cefa)"
run 0 cs -C disk/cefa sync hub
git -C disk/cefa merge-base --is-ancestor "$(main_of hub)" main ||
	fail "cefa's main lacks the hub's main after space was freed"
ok
acked_in_main disk/cefa "after space was freed"
staging_empty disk/cefa "after space was freed"
fsck_ok disk/cefa
verify_ok disk/cefa main

done_ok
