#!/bin/sh
# Suspected duplicates (docs/merge.md "Suspected duplicates"): two partners
# add the same shelter, and the same service at it, under different ids,
# with names that differ in case, accents and punctuation and points about
# 100 m apart.  After a sync every node lists the pairs with their
# reasons; a partner may not decide on them; the coordinator marks another
# pair distinct (listed nowhere after a sync) and merges the shelters (the
# other record is retired and 'show' names the record kept).  Verification
# passes everywhere.
set -eu
. "$(dirname "$0")/lib.sh"

genesis coord mdm-be root1
join ms2 ms2 coord
join alcs alcs coord

# sync: every node fetches every other, twice
sync() {
	for round in 1 2; do
		for a in coord ms2 alcs; do
			for b in coord ms2 alcs; do
				[ "$a" = "$b" ] ||
					run 0 cs -C "$a" fetch "$b" --peer "$b"
			done
		done
	done
	eq "ms2's main after sync" "$(main_of ms2)" "$(main_of coord)"
	eq "alcs's main after sync" "$(main_of alcs)" "$(main_of coord)"
}

# duplicates NODE: the suspected pairs as "TYPE ID1 ID2" lines, in pairs.txt
duplicates() {
	run 0 cs -C "$1" --json conflicts duplicates
	jq -r '.[] | "\(.type) \(.ids[0]) \(.ids[1])"' "$tmp/out" >pairs.txt ||
		fail "conflicts duplicates --json on $1 is not an array"
}

# listed NODE TYPE ID1 ID2: the pair is suspected on NODE
listed() {
	duplicates "$1"
	grep -qx "$2 $3 $4" pairs.txt || fail "$1 does not list $2 $3 $4"
	ok
}

# not_listed NODE ID1 ID2
not_listed() {
	duplicates "$1"
	if grep -q " $2 $3\$" pairs.txt; then
		fail "$1 lists $2 $3, which it should not"
	fi
	ok
}

shelter=$SAMPLE/shared/location-shelter-oujda.json
service=$SAMPLE/shared/service-shelter-oujda.json
# Fixed ids, in this order: the pairs are listed smaller id first.
loc_ms2=10000000-0000-4000-8000-000000000001
loc_alcs=10000000-0000-4000-8000-000000000002
svc_ms2=20000000-0000-4000-8000-000000000001
svc_alcs=20000000-0000-4000-8000-000000000002
sal_ms2=30000000-0000-4000-8000-000000000001
sal_alcs=30000000-0000-4000-8000-000000000002
youth_ms2=40000000-0000-4000-8000-000000000001
youth_alcs=40000000-0000-4000-8000-000000000002
far_ms2=50000000-0000-4000-8000-000000000001
far_alcs=50000000-0000-4000-8000-000000000002

# --- the same shelter, twice
jq --arg id "$loc_ms2" '.id = $id | .x_owner = "ms2" | del(.x_status)' \
	"$shelter" >loc-ms2.json
# Another case and accents, another dash; 0.0009 degrees north: 100 m.
jq --arg id "$loc_alcs" '.id = $id | .x_owner = "alcs" | del(.x_status)
	| .name = "CENTRE D'"'"'HEBERGEMENT D'"'"'URGENCE POUR FEMMES - OUJDA"
	| .latitude = 34.691318' "$shelter" >loc-alcs.json
jq --arg id "$svc_ms2" --arg loc "$loc_ms2" --arg sal "$sal_ms2" \
	'.id = $id | .x_owner = "ms2" | del(.x_status)
	| .service_at_locations = [{"id": $sal, "location_id": $loc}]' \
	"$service" >svc-ms2.json
jq --arg id "$svc_alcs" --arg loc "$loc_alcs" --arg sal "$sal_alcs" \
	'.id = $id | .x_owner = "alcs" | del(.x_status)
	| .name = "Hébergement d’urgence — femmes survivantes de violence"
	| .service_at_locations = [{"id": $sal, "location_id": $loc}]' \
	"$service" >svc-alcs.json

# --- two youth spaces in one commune, 2 km apart: suspected, but distinct
jq --arg id "$youth_ms2" '.id = $id | .x_owner = "ms2" | del(.x_status)
	| .name = "Espace santé jeunes" | del(.x_sensitivity)
	| del(.x_visibility) | .latitude = 34.681' "$shelter" >youth-ms2.json
jq --arg id "$youth_alcs" '.id = $id | .x_owner = "alcs" | del(.x_status)
	| .name = "Espace Santé des Jeunes" | del(.x_sensitivity)
	| del(.x_visibility) | .latitude = 34.699' "$shelter" >youth-alcs.json

# --- one name in two towns: never suspected
jq --arg id "$far_ms2" '.id = $id | .x_owner = "ms2" | del(.x_status)
	| .name = "Permanence juridique" | .x_admin.adm3 = "Oujda"' \
	"$shelter" >far-ms2.json
jq --arg id "$far_alcs" '.id = $id | .x_owner = "alcs" | del(.x_status)
	| .name = "Permanence juridique" | .latitude = 35.168
	| .longitude = -2.933 | .x_admin = {"adm1": "MA-02", "adm2": "02.381",
	  "adm3": "Nador"}' "$shelter" >far-alcs.json

for f in loc svc youth far; do
	run 0 cs -C ms2 add "$f-ms2.json"
	run 0 cs -C alcs add "$f-alcs.json"
done
# Before the histories meet, no node sees a pair.
run 0 cs -C ms2 conflicts
err_has "0 suspected duplicates"
sync

# --- listed everywhere, with the reasons
for n in coord ms2 alcs; do
	listed "$n" location "$loc_ms2" "$loc_alcs"
	listed "$n" service "$svc_ms2" "$svc_alcs"
	listed "$n" location "$youth_ms2" "$youth_alcs"
	not_listed "$n" "$far_ms2" "$far_alcs"
	eq "pairs on $n" "$(wc -l <pairs.txt)" 3
done
run 0 cs -C coord --json conflicts duplicates
jq_eq "shelter pair's owners" \
	".[] | select(.ids[0] == \"$loc_ms2\") | .owners | join(\",\")" \
	"$tmp/out" "ms2,alcs"
jq_eq "shelter pair's score" \
	".[] | select(.ids[0] == \"$loc_ms2\") | .score" "$tmp/out" 1
jq_eq "youth pair's reasons" \
	".[] | select(.ids[0] == \"$youth_ms2\") | .reasons | join(\"; \")" \
	"$tmp/out" \
	'names "Espace santé jeunes" and "Espace Santé des Jeunes" are alike (1.00); same commune "Oujda"'
run 0 cs -C coord conflicts
err_has "0 records with open conflicts" "suspected duplicates:" \
	"$loc_ms2 $loc_alcs  location  ms2,alcs" \
	"names \"Centre d'hébergement d'urgence pour femmes — Oujda\" and \"CENTRE D'HEBERGEMENT D'URGENCE POUR FEMMES - OUJDA\" are alike (1.00)" \
	"    100 m apart" "    same commune \"Oujda\"" \
	"$svc_ms2 $svc_alcs  service  ms2,alcs" \
	"    locations 100 m apart" \
	"    locations in the same commune \"Oujda\"" \
	"3 suspected duplicates"
# The conflicts' JSON is still the array of conflicts.
run 0 cs -C coord --json conflicts
jq_eq "conflicts --json" 'type + " " + (length | tostring)' "$tmp/out" \
	"array 0"
# show explains why.
run 0 cs -C ms2 conflicts show "$svc_alcs"
err_has "no open conflict" "suspected duplicate of $svc_ms2 (service of ms2)" \
	"locations 100 m apart"
run 0 cs -C ms2 --json conflicts show "$svc_alcs"
jq_eq "show --json duplicates" '.duplicates | map(.ids | join(" ")) | join(",")' \
	"$tmp/out" "$svc_ms2 $svc_alcs"
run 1 cs -C ms2 conflicts show "$far_ms2"
err_has "has no conflicts and is not a suspected duplicate"

# --- a partner may not decide
m=$(main_of ms2)
run 1 cs -C ms2 conflicts distinct "$youth_ms2" "$youth_alcs"
err_has "ms2 may not write consortium/duplicates.json" \
	"the coordinator decides on suspected duplicates"
run 1 cs -C alcs conflicts merge-duplicate "$loc_alcs" "$loc_ms2"
err_has "alcs may not write consortium/duplicates.json"
eq "ms2's main after a refused decision" "$(main_of ms2)" "$m"
run 2 cs -C coord conflicts distinct "$youth_ms2"
run 2 cs -C coord conflicts merge-duplicate "$loc_ms2"
run 1 cs -C coord conflicts distinct "$youth_ms2" "$youth_ms2"
err_has "cannot be distinct from itself"
run 1 cs -C coord conflicts merge-duplicate "$loc_ms2" "$svc_alcs"
err_has "are of different types"
run 1 cs -C coord conflicts distinct "$youth_ms2" 60000000-0000-4000-8000-000000000001
err_has "no record"

# --- the coordinator marks the youth spaces distinct
run 0 cs -C coord conflicts distinct "$youth_alcs" "$youth_ms2"
err_has "marked $youth_alcs and $youth_ms2 distinct"
eq "the decision's message" "$(git -C coord log -1 --format=%s main)" \
	"Mark records $youth_ms2 and $youth_alcs distinct"
git -C coord show main:consortium/duplicates.json >decisions.json
jq_eq "decisions after distinct" tojson decisions.json \
	"{\"distinct\":[[\"$youth_ms2\",\"$youth_alcs\"]],\"merged\":{}}"
run 0 cs -C coord conflicts distinct "$youth_ms2" "$youth_alcs"
err_has "marked distinct already; nothing committed"
sync
for n in coord ms2 alcs; do
	not_listed "$n" "$youth_ms2" "$youth_alcs"
	listed "$n" location "$loc_ms2" "$loc_alcs"
done

# --- the coordinator merges alcs's shelter into ms2's
run 0 cs -C coord conflicts merge-duplicate "$loc_ms2" "$loc_alcs"
err_has "merged $loc_alcs into $loc_ms2"
git -C coord diff --name-only main^ main >merge.diff
eq "files of the merge edit" "$(cat merge.diff | tr '\n' ' ')" \
	"consortium/duplicates.json $(record_path "$loc_alcs" alcs location) "
run 0 cs -C coord conflicts merge-duplicate "$loc_ms2" "$loc_alcs"
err_has "merged into $loc_ms2 already; nothing committed"
run 1 cs -C coord conflicts merge-duplicate "$loc_alcs" "$loc_ms2"
err_has "is retired"
sync
for n in coord ms2 alcs; do
	run 0 cs -C "$n" show "$loc_alcs"
	err_has "merged into $loc_ms2"
	run 0 cs -C "$n" --json show "$loc_alcs"
	jq_eq "status of the merged record on $n" .x_status "$tmp/out" retired
	run 0 cs -C "$n" show "$loc_ms2"
	err_lacks "merged into"
	not_listed "$n" "$loc_ms2" "$loc_alcs"
	# The services are still at the same place: still suspected.
	listed "$n" service "$svc_ms2" "$svc_alcs"
	eq "pairs on $n after the decisions" "$(wc -l <pairs.txt)" 1
done
git -C alcs show main:consortium/duplicates.json >decisions.json
jq_eq "decisions after merge" tojson decisions.json \
	"{\"distinct\":[[\"$youth_ms2\",\"$youth_alcs\"]],\"merged\":{\"$loc_alcs\":\"$loc_ms2\"}}"

verify_ok coord
verify_ok ms2
verify_ok alcs
done_ok
