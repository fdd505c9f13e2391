#!/bin/sh
# Keys and refusals: a signing key readable by others stops every signing
# command (with the chmod to run) but not reading; init never overwrites a
# node, a key or a non-empty directory; members add of a listed key fails; a
# member node cannot change the members; usage errors exit 2, --help 0.
set -eu
. "$(dirname "$0")/lib.sh"

genesis coord mdm-be root1
join ms2 ms2 coord
add_sample ms2 "$SAMPLE/ms2/organization-ms2.json"
svc=$(jq -r .id "$SAMPLE/ms2/service-ms2-consult.json")
add_sample ms2 "$SAMPLE/ms2/service-ms2-consult.json"
run 0 cs -C coord fetch ms2 --peer ms2

# --- a signing key readable by others
key=ms2/keys/signing_key
m=$(main_of ms2)
cat >edit-name.sh <<'EOF'
#!/bin/sh
jq '.name = "Nouveau nom"' "$1" >"$1.tmp" && mv "$1.tmp" "$1"
EOF
chmod +x edit-name.sh
for mode in 644 640 604; do
	chmod "$mode" "$key"
	run 1 cs -C ms2 add "$(proposed "$SAMPLE/ms2/location-ms2-oujda.json")"
	err_has "$key" "chmod 600 $key"
	run 1 cs -C ms2 publish "$svc" --yes
	err_has "chmod 600 $key"
	run 1 cs -C ms2 confirm "$svc" --method phone
	err_has "chmod 600 $key"
	run 1 cs -C ms2 retire "$svc"
	err_has "chmod 600 $key"
	run 1 cs -C ms2 rm "$svc"
	err_has "chmod 600 $key"
	run 1 env EDITOR="$tmp/edit-name.sh" "$CARTOSYNC" -C ms2 edit "$svc"
	err_has "chmod 600 $key"
	run 0 cs -C ms2 edit "$svc" --discard
	eq "main with a key of mode $mode" "$(main_of ms2)" "$m"
done
chmod 644 "$key"
# Reading needs no key.
run 0 cs -C ms2 --json show "$svc"
run 0 cs -C ms2 --json list
run 0 cs -C ms2 --json log
verify_ok ms2
# The coordinator's key too.
chmod 644 coord/keys/signing_key
cs keys generate "$tmp/k1" 2>/dev/null
run 1 cs -C coord members add --org cefa --role member --key k1.pub
err_has "chmod 600 coord/keys/signing_key"
chmod 600 coord/keys/signing_key "$key"
run 0 cs -C ms2 confirm "$svc" --method phone
ne "main after chmod 600" "$(main_of ms2)" "$m"
# A missing key: a clear error, nothing committed.
mv "$key" key.saved
m=$(main_of ms2)
run 1 cs -C ms2 confirm "$svc" --method visit
err_has "$key"
eq "main without a key" "$(main_of ms2)" "$m"
mv key.saved "$key"

# --- init never overwrites
m=$(main_of ms2)
sum=$(cksum <"$key")
conf=$(cksum <ms2/cartosync.conf)
run 1 cs -C ms2 init --org ms2 --join coord
err_has "'ms2' is a cartosync node already"
run 1 cs -C ms2 init --org mdm-be --genesis --root-key root1.pub
err_has "is a cartosync node already"
eq "key after a refused init" "$(cksum <"$key")" "$sum"
eq "config after a refused init" "$(cksum <ms2/cartosync.conf)" "$conf"
eq "main after a refused init" "$(main_of ms2)" "$m"
verify_ok ms2
# keys generate never overwrites a key.
cp root1 root1.saved
run 1 cs keys generate "$tmp/root1"
err_has "exists already"
cmp -s root1 root1.saved || fail "keys generate overwrote root1"
ok
# A failed init leaves no directory behind.
run 3 cs -C wrong init --org cefa --join coord --genesis-id 0000000000000000000000000000000000000000
err_has "holds the history of genesis $(git -C coord rev-list --max-parents=0 main), not 0000000000000000000000000000000000000000"
[ ! -e wrong ] || fail "a failed join left 'wrong' behind"
ok
run 1 cs -C nogen init --org cefa --genesis --root-key root1.pub --schema-dir "$tmp/no-schemas"
err_has "no-schemas"
[ ! -e nogen ] || fail "a failed genesis left 'nogen' behind"
ok
run 1 cs -C nojoin init --org cefa --join "$tmp/nowhere"
err_has "nowhere"
[ ! -e nojoin ] || fail "a failed join left 'nojoin' behind"
ok
run 1 cs -C badorg init --org MS2 --join coord
err_has "organisation code"
[ ! -e badorg ] || fail "a refused init left 'badorg' behind"
ok

# --- members add of an already-listed key
m=$(main_of coord)
run 1 cs -C coord members add --org ms2 --role member --key ms2.pub
err_has "that key is listed already"
# under another organisation, or as a root key, neither
run 1 cs -C coord members add --org cefa --role member --key ms2.pub
err_has "listed already"
run 1 cs -C coord members add --org cefa --role member --key root1.pub
err_has "listed already"
eq "coord's main after refused adds" "$(main_of coord)" "$m"
# revoke: unknown key, twice
run 1 cs -C coord members revoke SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
err_has "no member key"
run 1 cs -C coord members remove --org nobody
err_has "not a member"
# a key file that is not a key
echo "ssh-ed25519 not-base64 x" >notakey.pub
run 1 cs -C coord members add --org cefa --role member --key notakey.pub
err_has "notakey.pub"
eq "coord's main after refusals" "$(main_of coord)" "$m"

# --- a member node cannot change the members
run 0 cs -C ms2 fetch coord --peer coord
m=$(main_of ms2)
run 1 cs -C ms2 members add --org cefa --role member --key k1.pub
err_has "ms2 may not write 'consortium/members.json'"
err_lacks "committed"
run 1 cs -C ms2 members remove --org ms2
err_has "ms2 may not write 'consortium/members.json'"
eq "ms2's main after refused member changes" "$(main_of ms2)" "$m"

# --- usage errors: exit 2
run 2 cs
run 2 cs bogus
err_has "'bogus' is not a command"
run 2 cs --bogus list
err_has "unknown option '--bogus'"
run 2 cs -C ms2 add
run 2 cs -C ms2 add a.json b.json
run 2 cs -C ms2 show
run 2 cs -C ms2 show a b
run 2 cs -C ms2 list --bogus
run 2 cs -C ms2 list extra
run 2 cs -C ms2 list --type person
run 2 cs -C ms2 log a b
run 2 cs -C ms2 verify a b
run 2 cs -C ms2 rm
run 2 cs -C ms2 keys
run 2 cs -C ms2 keys bogus
run 2 cs -C ms2 fetch
run 2 cs -C ms2 fetch coord --bogus
run 2 cs -C ms2 members
run 2 cs -C ms2 members bogus
run 2 cs -C coord members add --org cefa --role admin --key k1.pub
err_has "--role is member or coordinator"
run 2 cs -C coord members add --org MS2 --role member --key k1.pub
err_has "not an organisation code"
run 2 cs -C coord members add --org shared --role member --key k1.pub
run 2 cs -C coord members add --org cefa --role member
run 2 cs -C coord members revoke
run 2 cs -C coord members remove
run 2 cs root
run 2 cs root approve --parent 1234 --members 5678 --key root1
run 2 cs root approve --members "$(main_of coord)" --key root1
run 2 cs -C x init
run 2 cs -C x init --org cefa
run 2 cs -C x init --org cefa --genesis --join coord
run 2 cs -C x init --org cefa --genesis
err_has "--root-key"
run 2 cs -C x init --org cefa --genesis --root-key root1.pub --root-threshold 2
err_has "--root-threshold must be between 1 and"
run 2 cs -C x init --org cefa --join coord extra
[ ! -e x ] || fail "usage errors of init left 'x' behind"
ok
run 2 cs validate
run 2 cs -C ms2 confirm "$svc" --method
run 2 cs -C ms2 publish a b c
eq "ms2's main after usage errors" "$(main_of ms2)" "$m"

# --- --help: exit 0, usage on stdout
for c in init keys members root add edit fetch rm show list log validate verify publish retire confirm; do
	run 0 cs "$c" --help
	out_has "usage: cartosync"
	run 0 cs help "$c"
	out_has "usage: cartosync"
done
run 0 cs --help
out_has "Exit status: 0 success, 1 error, 2 usage, 3 verification failed."
run 0 cs --version
out_has "cartosync "

# --- not a node
run 1 cs -C "$tmp/none" list
err_has "'$tmp/none' is not a cartosync node"
# CARTOSYNC_HOME names the node; -C wins over it.
run 0 env CARTOSYNC_HOME="$tmp/ms2" "$CARTOSYNC" --json show "$svc"
run 1 env CARTOSYNC_HOME="$tmp/ms2" "$CARTOSYNC" -C "$tmp/none" --json show "$svc"
(cd ms2 && "$CARTOSYNC" --json show "$svc" >/dev/null 2>&1) || fail "the current directory is not the default node"
ok

# --- init into a non-empty directory that is not a node is refused
# (lib/include/cartosync/node.h: "dir, which must not exist or be empty"),
# and what it holds is left alone.
mkdir notes
echo "mes notes" >notes/todo.txt
run 1 cs -C notes init --org cefa --join coord
eq "notes/ after a refused init" "$(ls -A notes)" "todo.txt"
# A member asking to revoke the coordinator's key is refused for authority,
# not sent to collect root approvals it could never use.
run 1 cs -C ms2 members revoke "$(fingerprint coord)"
err_has "ms2 may not write 'consortium/members.json'"
err_lacks "root approve"

done_ok
