#!/bin/sh
# cartosyncd serves its node over HTTPS with mutual TLS (docs/daemon.md):
# stock git clones it with a member node's certificate (pinning the
# server's key) and gets the same main; without a certificate, with a key
# that is not a member's, or with a wrong pin it gets nothing; a key
# admitted while the daemon runs is served at once.  Pushes land only in
# refs/incoming/<own org>/, never delete, and unverifiable history stays
# out of the store.  /status answers members; unknown paths, wrong methods,
# oversized or badly encoded bodies, too many connections, garbage and
# silent connections get clear refusals and the daemon keeps serving.
# Loose objects are packed within an interval and stay served.
# SIGHUP applies new limits; SIGTERM during an upload-pack leaves no git
# process behind.
set -eu
. "$(dirname "$0")/lib.sh"

: "${CARTOSYNCD:=$CS_SOURCE_ROOT/build/daemon/cartosyncd}"
[ -x "$CARTOSYNCD" ] || fail "CARTOSYNCD='$CARTOSYNCD' is not an executable"
for tool in curl openssl; do
	command -v "$tool" >/dev/null 2>&1 || fail "'$tool' is needed"
done

dpid=
bg=
cleanup() {
	for p in $bg $dpid; do
		kill -9 "$p" 2>/dev/null || true
	done
	if command -v cleanup_story >/dev/null 2>&1; then
		cleanup_story # lib.sh's: its daemons, then $tmp
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT

LOG=$tmp/daemon.log
GIT_TERMINAL_PROMPT=0
GIT_AUTHOR_NAME=tester GIT_AUTHOR_EMAIL=t@example.org
GIT_COMMITTER_NAME=tester GIT_COMMITTER_EMAIL=t@example.org
export GIT_TERMINAL_PROMPT GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL \
	GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL

# wait_log PATTERN: up to 10 s for a fixed string in the daemon's log
wait_log() {
	w=0
	while ! grep -qF -- "$1" "$LOG" 2>/dev/null; do
		w=$((w + 1))
		[ $w -le 100 ] || { cat "$LOG" >&2; fail "no '$1' in the daemon's log"; }
		sleep 0.1
	done
	ok
}

# log_count PATTERN: how many log lines have the fixed string
log_count() {
	grep -cF -- "$1" "$LOG" 2>/dev/null || true
}

# ------------------------------------------------------------ the nodes

genesis hub mdm-be root
join ms2 ms2 hub
add_sample ms2 "$SAMPLE/ms2/organization-ms2.json"
run 0 cs -C hub fetch ms2 --peer ms2
hub_main=$(main_of hub)
genesis_id=$(git -C hub rev-list --max-parents=0 main)
# a node that asked to join but is not admitted (yet)
run 0 cs -C alcs init --org alcs --join hub --genesis-id "$genesis_id"
cs -C alcs keys public >"$tmp/alcs.pub" || fail "keys public of alcs"
# a key nobody knows
openssl genpkey -algorithm ed25519 -out "$tmp/stranger.pem" 2>/dev/null
openssl req -new -x509 -key "$tmp/stranger.pem" -subj /CN=ms2 -days 2 \
	-out "$tmp/stranger.crt" 2>/dev/null || fail "cannot make a certificate"

sync_every hub 1 # no peers: how often the store is looked after
cat >>hub/cartosync.conf <<'EOF'
[serve]
listen = 127.0.0.1:0        # any free port
max-body = 1M
max-connections-per-peer = 3
handshake-timeout = 1
EOF

"$CARTOSYNCD" -C hub -v 2>"$LOG" &
dpid=$!
wait_log "ready"
wait_log "listening on https://127.0.0.1:"
[ -f hub/serve.url ] || fail "no hub/serve.url"
URL=$(cat hub/serve.url)
case $URL in
https://127.0.0.1:[1-9]*/) ok ;;
*) fail "serve.url holds '$URL'" ;;
esac
grep -qF "listening on $URL" "$LOG" || fail "the log and serve.url differ"
PORT=${URL#https://127.0.0.1:}
PORT=${PORT%/}
[ -x hub/hooks/pre-receive ] || fail "no executable hub/hooks/pre-receive"
grep -qF -- "--pre-receive" hub/hooks/pre-receive || fail "the hook is not cartosyncd's"
ok

# The pin of the server's key: the hash members.json lists, in base64.
hub_tls=$(git -C hub show main:consortium/members.json |
	jq -r '.keys[] | select(.org == "mdm-be") | .tls')
PIN=sha256//$($PY -c 'import base64, sys
print(base64.b64encode(bytes.fromhex(sys.argv[1][7:])).decode())' "$hub_tls")

# as NODE: git with NODE's certificate and the server's key pinned
as() {
	a_node=$1
	shift
	git -c "http.sslCert=$tmp/$a_node/keys/tls_cert.pem" \
		-c "http.sslKey=$tmp/$a_node/keys/tls_key.pem" \
		-c http.sslVerify=false -c "http.pinnedPubkey=$PIN" "$@"
}
# scurl NODE ARGS...: curl with NODE's certificate
scurl() {
	s_node=$1
	shift
	curl -sk --cert "$tmp/$s_node/keys/tls_cert.pem" \
		--key "$tmp/$s_node/keys/tls_key.pem" "$@"
}

# ------------------------------------------------------------ clones

run 0 as ms2 clone --bare "$URL" clone1
eq "main of the clone" "$(git -C clone1 rev-parse main)" "$hub_main"
wait_log "serve: ms2 upload-pack done"

# The pin is checked: another key's pin fails.
run 128 git -c "http.sslCert=$tmp/ms2/keys/tls_cert.pem" \
	-c "http.sslKey=$tmp/ms2/keys/tls_key.pem" -c http.sslVerify=false \
	-c "http.pinnedPubkey=sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" \
	ls-remote "$URL"
err_has "pinned"

# No certificate: refused, and the daemon says why.
run 128 git -c http.sslVerify=false -c "http.pinnedPubkey=$PIN" clone "$URL" clone2
[ ! -d clone2/objects ] || fail "a clone without a certificate got objects"
ok
wait_log "refused 127.0.0.1:"
wait_log ": no client certificate (GET /info/refs?service=git-upload-pack)"

# A key that is not a member's: 403, with the key named.
stranger_hash=sha256:$(openssl pkey -in "$tmp/stranger.pem" -pubout -outform DER |
	openssl dgst -sha256 -hex | sed 's/.*= *//')
run 128 git -c "http.sslCert=$tmp/stranger.crt" -c "http.sslKey=$tmp/stranger.pem" \
	-c http.sslVerify=false -c "http.pinnedPubkey=$PIN" clone "$URL" clone3
err_has "403" "certificate key $stranger_hash is not a member node key"
wait_log "refused $stranger_hash: not a member node key"

# alcs is not admitted: 403; admitted while the daemon runs (main moves):
# served, without a restart.
run 128 as alcs ls-remote "$URL"
err_has "403" "is not a member node key"
run 0 cs -C hub members add --org alcs --role member --key "$tmp/alcs.pub"
hub_main=$(main_of hub)
run 0 as alcs ls-remote "$URL" refs/heads/main
out_has "$hub_main	refs/heads/main"

# ------------------------------------------------------------ pushes

run 1 as ms2 -C ms2 push "$URL" +main:refs/heads/main
err_has "remote: cartosyncd: refused refs/heads/main: ms2 may push only to refs/incoming/ms2/" \
	"pre-receive hook declined"
eq "hub main after a push to main" "$(main_of hub)" "$hub_main"

run 1 as ms2 -C ms2 push "$URL" main:refs/incoming/mdm-be/main
err_has "refused refs/incoming/mdm-be/main: ms2 may push only to refs/incoming/ms2/"
git -C hub rev-parse -q --verify refs/incoming/mdm-be/main >/dev/null &&
	fail "a push landed in another organisation's refs"
ok

# Deletions are refused, even of one's own refs.
git -C hub update-ref refs/incoming/ms2/old "$hub_main"
run 1 as ms2 -C ms2 push "$URL" :refs/incoming/ms2/old
err_has "refused deleting refs/incoming/ms2/old: a push may not delete refs"
eq "refs/incoming/ms2/old after a delete" \
	"$(git -C hub rev-parse refs/incoming/ms2/old)" "$hub_main"

# Into its own refs the ref checks pass; what follows is verification
# (cs_sync_check_pushed) of a new signed edit of ms2's, whose objects the
# hub does not hold: they wait in git's quarantine while it is verified,
# then it is kept.
add_sample ms2 "$SAMPLE/ms2/location-ms2-oujda.json"
ms2_main=$(main_of ms2)
git -C hub cat-file -e "$ms2_main" 2>/dev/null && fail "the hub has ms2's new edit already"
run 0 as ms2 -C ms2 push "$URL" main:refs/incoming/ms2/x
err_lacks "may push only to"
eq "refs/incoming/ms2/x" "$(git -C hub rev-parse refs/incoming/ms2/x)" "$ms2_main"
wait_log "serve: ms2 receive-pack done"
# The daemon integrates what arrived at once.
wait_until 20 "the pushed edit in the hub's main" \
	git -C hub merge-base --is-ancestor "$ms2_main" main
hub_main=$(main_of hub)

# Heads per organisation are capped: ms2 holds refs/incoming/ms2/old and
# .../x; with max-pushed-heads = 3, one more fits, two more do not.  A
# push updating a head it holds is not a new head.
printf 'max-pushed-heads = 3\n' >>hub/cartosync.conf
run 1 as ms2 -C ms2 push "$URL" main:refs/incoming/ms2/y main:refs/incoming/ms2/z
err_has "refused: ms2 would hold 4 heads under refs/incoming/ms2/; the most is 3 ([serve] max-pushed-heads)"
git -C hub rev-parse -q --verify refs/incoming/ms2/y >/dev/null &&
	fail "a push over max-pushed-heads was kept"
ok
run 0 as ms2 -C ms2 push "$URL" main:refs/incoming/ms2/y
run 0 as ms2 -C ms2 push "$URL" +main:refs/incoming/ms2/old
eq "refs/incoming/ms2/old after an update at the cap" \
	"$(git -C hub rev-parse refs/incoming/ms2/old)" "$ms2_main"
sed -i '/^max-pushed-heads/d' hub/cartosync.conf

# An unsigned commit is never kept, nor are its objects.
forged=$(git -C ms2 commit-tree -p main -m forged "$(git -C ms2 rev-parse 'main^{tree}')")
run 1 as ms2 -C ms2 push "$URL" "$forged:refs/incoming/ms2/forged"
err_has "remote: cartosyncd: refused"
git -C hub rev-parse -q --verify refs/incoming/ms2/forged >/dev/null &&
	fail "an unsigned push was kept"
git -C hub cat-file -e "$forged" 2>/dev/null &&
	fail "the objects of a refused push are in the served store"
ok

# ------------------------------------------------------------ /status and errors

run 0 scurl ms2 -o "$tmp/status.json" -w '%{http_code} %{content_type}' "${URL}status"
out_has "200 application/json"
jq_eq "status org" .org "$tmp/status.json" mdm-be
jq_eq "status main" .main "$tmp/status.json" "$hub_main"
jq_eq "status genesis" .genesis "$tmp/status.json" "$genesis_id"

run 0 curl -sk -w ' %{http_code}' "${URL}status"
out_has "a client certificate is needed" " 401"
run 0 curl -sk --cert "$tmp/stranger.crt" --key "$tmp/stranger.pem" -w ' %{http_code}' "${URL}status"
out_has "certificate key $stranger_hash is not a member node key" " 403"

run 0 scurl ms2 -w ' %{http_code}' "${URL}nothing/here"
out_has "no such resource: /nothing/here" " 404"
run 0 scurl ms2 -w ' %{http_code}' "${URL}info/refs"
out_has " 404"
run 0 scurl ms2 -X DELETE -w ' %{http_code}' "${URL}status"
out_has " 405"
run 0 scurl ms2 -w ' %{http_code}' "${URL}git-upload-pack"
out_has "/git-upload-pack takes POST only" " 405"

T=application/x-git-upload-pack-request
head -c 2000000 /dev/zero >"$tmp/zeros"
run 0 scurl ms2 -H "Content-Type: $T" --data-binary "@$tmp/zeros" \
	-w ' %{http_code}' "${URL}git-upload-pack"
out_has " 413"
gzip -c "$tmp/zeros" >"$tmp/zeros.gz"
[ "$(wc -c <"$tmp/zeros.gz")" -lt 10000 ] || fail "gzip of zeros is large"
run 0 scurl ms2 -H "Content-Type: $T" -H "Content-Encoding: gzip" \
	--data-binary "@$tmp/zeros.gz" -w ' %{http_code}' "${URL}git-upload-pack"
out_has "the request body inflates to more than max-body (1.0 MiB)" " 413"
printf '0032want %s\n00000009done\n' "$hub_main" >"$tmp/want"
run 0 scurl ms2 -H "Content-Type: $T" -H "Content-Encoding: br" \
	--data-binary "@$tmp/want" -w ' %{http_code}' "${URL}git-upload-pack"
out_has "Content-Encoding br is not supported" " 415"
# The same want, gzipped, is served like the plain one.
run 0 scurl ms2 -H "Content-Type: $T" --data-binary "@$tmp/want" \
	-o "$tmp/pack.plain" -w '%{http_code}' "${URL}git-upload-pack"
out_has 200
gzip -c "$tmp/want" >"$tmp/want.gz"
run 0 scurl ms2 -H "Content-Type: $T" -H "Content-Encoding: gzip" \
	--data-binary "@$tmp/want.gz" -o "$tmp/pack.gz" -w '%{http_code}' \
	"${URL}git-upload-pack"
out_has 200
cmp -s "$tmp/pack.plain" "$tmp/pack.gz" || fail "gzip and plain requests differ"
[ "$(wc -c <"$tmp/pack.plain")" -gt 100 ] || fail "no pack for a want"
ok

# Too many connections from one organisation: 503, then served again.
held=
c0=$(log_count 'serve: ms2 connected')
for i in 1 2 3; do
	sleep 2 | openssl s_client -quiet -no_ign_eof -connect "127.0.0.1:$PORT" \
		-cert "$tmp/ms2/keys/tls_cert.pem" -key "$tmp/ms2/keys/tls_key.pem" \
		>/dev/null 2>&1 &
	held="$held $!"
done
bg="$bg $held"
n=0
while [ "$(log_count 'serve: ms2 connected')" -lt $((c0 + 3)) ]; do
	n=$((n + 1))
	[ $n -le 100 ] || fail "the 3 held connections did not connect"
	sleep 0.1
done
run 0 scurl ms2 -w ' %{http_code}' "${URL}status"
out_has "too many connections from ms2 (max-connections-per-peer = 3)" " 503"
for p in $held; do
	wait "$p" 2>/dev/null || true
done
run 0 scurl ms2 -o /dev/null -w '%{http_code}' "${URL}status"
out_has 200

# Garbage: plain bytes on the TLS port, junk inside TLS, a connection that
# never shakes hands.  The daemon drops them and goes on serving.
$PY - "$PORT" <<'EOF' || fail "garbage on the socket"
import socket, sys, time
port = int(sys.argv[1])
for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", bytes(range(256)) * 8):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(5)
    s.sendall(junk)
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    s.close()
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(5)
t = time.time()
if s.recv(100) != b"" or time.time() - t > 4:
    sys.exit("a silent connection was not dropped in time")
EOF
ok
printf 'NOT HTTP \001\002\r\n\r\n' >"$tmp/junk"
(cat "$tmp/junk"; sleep 1) | openssl s_client -quiet -connect "127.0.0.1:$PORT" \
	-cert "$tmp/ms2/keys/tls_cert.pem" -key "$tmp/ms2/keys/tls_key.pem" \
	>"$tmp/junk.out" 2>/dev/null || true
grep -q "400 Bad Request" "$tmp/junk.out" || fail "no 400 for junk inside TLS"
ok
wait_log "failed: http request"
wait_log "no TLS handshake within 1 s"
kill -0 "$dpid" || fail "the daemon died of garbage"
run 0 scurl ms2 -o /dev/null -w '%{http_code}' "${URL}status"
out_has 200

# ------------------------------------------------------------ packing

# Loose objects are packed within an interval (docs/daemon.md "The
# store"): 300 files committed with stock git leave 300 loose objects;
# the daemon packs them, and every object is still there and served.
mkdir "$tmp/many"
for i in $(seq 1 300); do
	echo "{\"n\": $i}" >"$tmp/many/$i.json"
done
# The daemon stopped meanwhile: objects not yet referenced stay loose
# when it packs, and would wait for 256 more.
packed_before=$(log_count "loose objects packed")
kill -STOP "$dpid"
ls "$tmp"/many/*.json | git -C hub hash-object -w --stdin-paths >"$tmp/many.ids"
loose_before=$(git -C hub count-objects -v | sed -n 's/^count: //p')
[ "$loose_before" -ge 300 ] || fail "only $loose_before loose objects"
many_tree=$(awk '{printf "100644 blob %s\t%d.json\n", $1, NR}' "$tmp/many.ids" |
	git -C hub mktree)
many=$(git -C hub commit-tree -m many "$many_tree")
git -C hub update-ref refs/test/many "$many"
kill -CONT "$dpid"
w=0
while [ "$(log_count "loose objects packed")" -le "$packed_before" ]; do
	w=$((w + 1))
	[ $w -le 100 ] || { cat "$LOG" >&2; fail "the daemon does not pack"; }
	sleep 0.1
done
ok
loose_after=$(git -C hub count-objects -v | sed -n 's/^count: //p')
[ "$loose_after" -lt 10 ] ||
	fail "$loose_after loose objects left of $loose_before"
ok
! grep -F "store:" "$LOG" | grep -v "loose objects packed" ||
	fail "the packing logged an error"
fsck_ok hub
git -C hub cat-file --batch-check <"$tmp/many.ids" | grep -v " blob " &&
	fail "a packed object is missing"
ok
run 0 as ms2 -C clone1 fetch -q "$URL" refs/test/many:refs/test/many
eq "refs/test/many fetched" "$(git -C clone1 rev-parse refs/test/many)" "$many"
verify_ok hub main

# ------------------------------------------------------------ SIGHUP, SIGTERM

# New limits apply on SIGHUP; a new listen address needs a restart.
sed -i 's/^max-connections-per-peer = 3$/max-upload-packs = 1/; s/^listen = .*/listen = 127.0.0.1:1/' \
	hub/cartosync.conf
kill -HUP "$dpid"
wait_log "listen changed to 127.0.0.1:1: restart cartosyncd"
wait_log "1 git processes, handshake within 1 s"
run 0 scurl ms2 -o /dev/null -w '%{http_code}' "${URL}status"
out_has 200

# A 16 MB commit to fetch slowly, so that git is still at it on SIGTERM.
head -c 16000000 /dev/urandom >"$tmp/big"
blob=$(git -C hub hash-object -w "$tmp/big")
tree=$(printf '100644 blob %s\tbig\n' "$blob" | git -C hub mktree)
big=$(git -C hub commit-tree -m big "$tree")
git -C hub update-ref refs/test/big "$big"
printf '0032want %s\n00000009done\n' "$big" >"$tmp/want.big"
scurl ms2 --limit-rate 100k -H "Content-Type: $T" --data-binary "@$tmp/want.big" \
	-o /dev/null "${URL}git-upload-pack" &
slow=$!
bg="$bg $slow"
n=0
pgid=
while [ -z "$pgid" ]; do
	n=$((n + 1))
	[ $n -le 100 ] || fail "no upload-pack for the slow fetch"
	pgid=$(ps -o pid=,args= --ppid "$dpid" | grep 'upload-pack --strict --stateless-rpc' |
		grep -v advertise | awk '{print $1}' | head -n 1)
	[ -n "$pgid" ] || sleep 0.1
done
ok
# max-upload-packs = 1: the next request waits its turn.
as ms2 ls-remote "$URL" >/dev/null 2>&1 &
queued=$!
bg="$bg $queued"
wait_log "queued: 1 git processes running"
# in_group PGID: the live processes of a process group
in_group() {
	ps -e -o pid=,pgid=,stat= | awk -v g="$1" '$2 == g && $3 !~ /^Z/ {print $1}'
}
[ -n "$(in_group "$pgid")" ] || fail "upload-pack ended before SIGTERM"
ok

kill -TERM "$dpid"
rc=0
wait "$dpid" || rc=$?
dpid=
eq "exit status after SIGTERM" "$rc" 0
wait_log "SIGTERM: stopping"
wait_log "serve: stopped 1 git process"
# SIGKILL is on its way to the whole group; give it a moment to land.
n=0
while [ -n "$(in_group "$pgid")" ] && [ $n -lt 20 ]; do
	n=$((n + 1))
	sleep 0.1
done
eq "git processes left after SIGTERM" "$(in_group "$pgid")" ""
[ ! -f hub/serve.url ] || fail "serve.url outlives the daemon"
ok
rc=0
wait "$queued" || rc=$?
ne "the queued ls-remote's exit status" "$rc" 0
wait "$slow" 2>/dev/null || true

done_ok
