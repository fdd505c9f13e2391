#!/bin/sh
# The life of a record: add (proposed) -> publish -> retire; publishing a
# sensitive category or population asks for a confirmation (refused without
# a terminal unless --yes); confirm records when, by whom and how it was
# verified; repeating a step commits nothing; rm removes the file.
set -eu
. "$(dirname "$0")/lib.sh"

TTY="$PY $libdir/tools/tty.py"

genesis coord mdm-be root1
join ms2 ms2 coord
add_sample ms2 "$SAMPLE/ms2/organization-ms2.json"

# status ID: x_status of the record in ms2's main
status() {
	cs -C ms2 --json show "$1" >st.json || fail "show $1"
	jq -r .x_status st.json
}

# unchanged_main WHAT M: ms2's main is still M
unchanged_main() {
	eq "main after $1" "$(main_of ms2)" "$2"
}

# --- add: proposed
svc=$(jq -r .id "$SAMPLE/ms2/service-ms2-consult.json")
svc_path=$(record_path "$svc" ms2 service)
add_sample ms2 "$SAMPLE/ms2/service-ms2-consult.json"
eq "status after add" "$(status "$svc")" proposed
run 0 cs -C ms2 --json list --status proposed
jq_eq "proposed records" "[.[] | select(.id == \"$svc\")] | length" "$tmp/out" 1

# --- publish a normal service
m=$(main_of ms2)
run 0 cs -C ms2 --json publish "$svc" </dev/null
jq_eq "publish --json commit" .commit "$tmp/out" "$(main_of ms2)"
eq "status after publish" "$(status "$svc")" published
eq "publish's parent" "$(git -C ms2 rev-parse main^)" "$m"
eq "publish message" "$(git -C ms2 log -1 --format=%s main)" "Publish service $svc"
# Only x_status changed.
git -C ms2 show "$m:$svc_path" | jq -S 'del(.x_status)' >a.json
git -C ms2 show "main:$svc_path" | jq -S 'del(.x_status)' >b.json
cmp -s a.json b.json || fail "publish changed more than x_status"
ok
run 0 cs -C ms2 --json list --status published
jq_eq "published records" '[.[].id] | join(",")' "$tmp/out" "$svc"
# Again: nothing committed.
m=$(main_of ms2)
run 0 cs -C ms2 publish "$svc"
err_has "published already; nothing committed"
unchanged_main "a second publish" "$m"

# --- publish a record of a sensitive category
shelter=$(jq -r .id "$SAMPLE/shared/service-shelter-oujda.json")
jq_eq "the shelter's category is sensitive" '.x_categories | join(",")' \
	"$SAMPLE/shared/service-shelter-oujda.json" shelter_gbv
jq -e '.publish_confirmation.categories | index("shelter_gbv")' "$CS_SCHEMA_DIR/default-policy.json" >/dev/null ||
	fail "the policy does not list shelter_gbv"
ok
add_sample ms2 "$SAMPLE/shared/service-shelter-oujda.json"
eq "shelter status after add" "$(status "$shelter")" proposed
m=$(main_of ms2)
run 1 cs -C ms2 publish "$shelter" </dev/null
err_has "not published" "sensitive category (shelter_gbv)" "--yes"
unchanged_main "a refused publish" "$m"
eq "shelter status after refusal" "$(status "$shelter")" proposed
# On a terminal the question is asked: "n" refuses, "y" publishes.
run 1 $TTY n "$CARTOSYNC" -C ms2 publish "$shelter"
err_has "sensitive category (shelter_gbv)" "Publish? [y/N]" "not published"
unchanged_main "a publish answered no" "$m"
run 0 $TTY y "$CARTOSYNC" -C ms2 publish "$shelter"
err_has "Publish? [y/N]"
eq "shelter status after a yes" "$(status "$shelter")" published
# --yes, without a terminal, on another sensitive record: a population.
mobile=$(jq -r .id "$SAMPLE/ms2/service-ms2-mobile.json")
jq 'del(.x_status) | .x_populations = ["migrants", "migrants_irregular"]' \
	"$SAMPLE/ms2/service-ms2-mobile.json" >mobile.json
run 0 cs -C ms2 add mobile.json
m=$(main_of ms2)
run 1 cs -C ms2 publish "$mobile" </dev/null
err_has "migrants_irregular" "--yes"
unchanged_main "a refused publish (population)" "$m"
run 0 cs -C ms2 publish "$mobile" --yes </dev/null
eq "status after publish --yes" "$(status "$mobile")" published
eq "author of publish --yes" "$(git -C ms2 log -1 --format=%an main)" ms2
# --yes before the id works too.
line=$(jq -r .id "$SAMPLE/ms2/service-ms2-line.json")
jq 'del(.x_status) | .x_categories = ["trafficking"]' "$SAMPLE/ms2/service-ms2-line.json" >line.json
run 0 cs -C ms2 add line.json
run 1 cs -C ms2 publish "$line" </dev/null
err_has "sensitive category (trafficking)"
run 0 cs -C ms2 publish --yes "$line" </dev/null
eq "status after publish --yes ID" "$(status "$line")" published

# --- retire
m=$(main_of ms2)
run 0 cs -C ms2 retire "$svc"
eq "status after retire" "$(status "$svc")" retired
eq "retire message" "$(git -C ms2 log -1 --format=%s main)" "Retire service $svc"
m=$(main_of ms2)
run 0 cs -C ms2 retire "$svc"
err_has "retired already; nothing committed"
unchanged_main "a second retire" "$m"
run 0 cs -C ms2 --json list --status retired
jq_eq "retired records" '[.[].id] | join(",")' "$tmp/out" "$svc"
# Still in the history, with its file.
git -C ms2 cat-file -e "main:$svc_path" || fail "a retired record lost its file"
ok
# A retired record can be published again (it reopened).
run 0 cs -C ms2 publish "$svc" </dev/null
eq "status after publishing a retired record" "$(status "$svc")" published

# --- confirm
d0=$(date -u +%Y-%m-%d)
run 0 cs -C ms2 confirm "$svc" --method visit
d1=$(date -u +%Y-%m-%d)
cs -C ms2 --json show "$svc" >v.json
v=$(jq -r '.x_verified | "\(.date) \(.by) \(.method)"' v.json)
[ "$v" = "$d0 ms2 visit" ] || [ "$v" = "$d1 ms2 visit" ] ||
	fail "x_verified after confirm: '$v', expected '$d1 ms2 visit'"
ok
jq_eq "no note" '.x_verified | has("note")' v.json false
eq "confirm message" "$(git -C ms2 log -1 --format=%s main)" "Confirm service $svc"
# An identical confirm the same day: nothing committed.
m=$(main_of ms2)
run 0 cs -C ms2 confirm "$svc" --method visit
err_has "confirmed today already; nothing committed"
unchanged_main "an identical confirm" "$m"
# Another method, or a note, is a new confirmation.
run 0 cs -C ms2 confirm "$svc" --method phone --note "Appel à l'accueil"
cs -C ms2 --json show "$svc" >v.json
jq_eq "method after the phone confirm" .x_verified.method v.json phone
jq_eq "note after the phone confirm" .x_verified.note v.json "Appel à l'accueil"
ne "main after a new confirm" "$(main_of ms2)" "$m"
# The coordinator confirms a partner's record: by = the coordinator.
run 0 cs -C coord fetch ms2 --peer ms2
run 0 cs -C coord confirm "$svc" --method import
run 0 cs -C coord --json show "$svc"
jq_eq "confirmed by the coordinator" '.x_verified | "\(.by) \(.method)"' "$tmp/out" "mdm-be import"
# Usage.
run 2 cs -C ms2 confirm "$svc"
run 2 cs -C ms2 confirm "$svc" --method telepathy
err_has "--method is phone, visit, self_report or import"
run 2 cs -C ms2 confirm --method phone
run 2 cs -C ms2 publish
run 2 cs -C ms2 retire
run 1 cs -C ms2 publish 00000000-0000-4000-8000-000000000000
err_has "no record"

# --- rm
m=$(main_of ms2)
run 0 cs -C ms2 rm "$line"
err_has "removed $line"
line_path=$(record_path "$line" ms2 service)
git -C ms2 cat-file -e "main:$line_path" 2>/dev/null && fail "$line_path is still in main"
ok
git -C ms2 cat-file -e "$m:$line_path" || fail "$line_path is not in the history before rm"
ok
eq "rm message" "$(git -C ms2 log -1 --format=%s main)" "Remove service $line"
git -C ms2 diff --name-status "$m" main >rm.diff
eq "rm's change" "$(cat rm.diff)" "$(printf 'D\t%s' "$line_path")"
run 1 cs -C ms2 show "$line"
err_has "no record"
run 1 cs -C ms2 rm "$line"
err_has "no record"
run 0 cs -C ms2 --json list
jq_eq "removed record not listed" "[.[] | select(.id == \"$line\")] | length" "$tmp/out" 0
run 1 cs -C ms2 rm "../../consortium/members"
git -C ms2 cat-file -e main:consortium/members.json || fail "members.json is gone"
ok

verify_ok ms2
verify_ok coord
done_ok
