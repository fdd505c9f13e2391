/*
 * cartosync — suspected duplicates: name normalisation, which pairs are
 * suspected and which are not, the decisions (cleaning, the union merge of
 * histories, marking pairs distinct, merging records), determinism, an
 * exact cross-check of the index against the definition applied to every
 * pair, and a 20,000-record map.
 *
 * The rules checked are those of lib/include/cartosync/duplicates.h; the
 * reference for the cross-check is written here again from them, pair by
 * pair, without the index.
 */
#include <check.h>
#include <dirent.h>
#include <git2.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cartosync/consortium.h"
#include "cartosync/duplicates.h"
#include "cartosync/error.h"
#include "cartosync/history.h"
#include "cartosync/json.h"
#include "cartosync/key.h"
#include "cartosync/map.h"
#include "cartosync/node.h"
#include "cartosync/record.h"
#include "cartosync/repo.h"

/* basedir: one per run; tmpdir: one per test inside it. */
static char basedir[64];
static char tmpdir[96];
static cs_node *node;
static cs_repo *repo;
static cs_oid genesis;

static void
make_basedir(void)
{
	snprintf(basedir, sizeof(basedir), "/tmp/cs-test-dup-XXXXXX");
	if (mkdtemp(basedir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
}

static void
remove_basedir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", basedir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", basedir);
}

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	ck_assert_msg(v != NULL, "%s is not set", name);
	return v;
}

/* ---------------------------------------------------------------------- */
/* Records */

#define ORG_ID "0f000000-0000-4000-8000-000000000000"

static void
set_common(json_t *r, const char *id, const char *owner, const char *type,
	   const char *name)
{
	json_object_set_new(r, "id", json_string(id));
	json_object_set_new(r, "x_owner", json_string(owner));
	json_object_set_new(r, "x_record_type", json_string(type));
	json_object_set_new(r, "x_status", json_string("proposed"));
	json_object_set_new(r, "name", json_string(name));
	json_object_set_new(r, "x_verified",
			    json_pack("{s:s, s:s, s:s}", "by", "mdm-be", "date",
				      "2025-03-12", "method", "phone"));
}

/* A province's region: "02.411" is in MA-02. */
static json_t *
admin(const char *adm2, const char *adm3)
{
	char adm1[6];

	snprintf(adm1, sizeof(adm1), "MA-%.2s", adm2);
	return adm3 ? json_pack("{s:s, s:s, s:s}", "adm1", adm1, "adm2", adm2,
				"adm3", adm3)
		    : json_pack("{s:s, s:s}", "adm1", adm1, "adm2", adm2);
}

/* A location; lat NAN: no coordinates; adm3 NULL: no commune. */
static json_t *
location(const char *id, const char *owner, const char *name, double lat,
	 double lon, const char *adm2, const char *adm3, const char *org)
{
	json_t *r = json_object();

	set_common(r, id, owner, "location", name);
	json_object_set_new(r, "location_type", json_string("physical"));
	json_object_set_new(r, "organization_id",
			    json_string(org ? org : ORG_ID));
	json_object_set_new(r, "x_admin", admin(adm2, adm3));
	if (!isnan(lat)) {
		json_object_set_new(r, "latitude", json_real(lat));
		json_object_set_new(r, "longitude", json_real(lon));
	}
	return r;
}

/* A service at one location (loc NULL: none); `sal` names the entry. */
static json_t *
service(const char *id, const char *owner, const char *name, const char *loc)
{
	json_t *r = json_object();

	set_common(r, id, owner, "service", name);
	json_object_set_new(r, "organization_id", json_string(ORG_ID));
	json_object_set_new(r, "status", json_string("active"));
	json_object_set_new(r, "x_categories", json_pack("[s]", "shelter"));
	if (loc) {
		char sal[37];

		/* The entry's id: the service's, with another first digit. */
		snprintf(sal, sizeof(sal), "e%s", id + 1);
		json_object_set_new(r, "service_at_locations",
				    json_pack("[{s:s, s:s}]", "id", sal,
					      "location_id", loc));
	}
	return r;
}

static json_t *
organization(const char *id, const char *owner, const char *name)
{
	json_t *r = json_object();

	set_common(r, id, owner, "organization", name);
	json_object_set_new(r, "description", json_string("Une organisation."));
	return r;
}

/* ids: "<tag>0000000-0000-4000-8000-00000000000<n>" */
static const char *
uid(char buf[37], unsigned tag, unsigned n)
{
	snprintf(buf, 37, "%08x-0000-4000-8000-%012x", tag, n);
	return buf;
}

/* cs_duplicates_find_in, or fail. */
static json_t *
find(const json_t *records, const json_t *decisions)
{
	json_t *out = NULL;

	ck_assert_msg(cs_duplicates_find_in(&out, records, decisions) == 0,
		      "%s", cs_error_last());
	ck_assert_ptr_nonnull(out);
	return out;
}

/* "a b" of each pair, comma-separated. */
static char *
pair_list(const json_t *pairs)
{
	size_t i, len = 1;
	json_t *p;
	char *s;

	json_array_foreach(pairs, i, p) len += 2 * 37 + 1;
	s = calloc(1, len);
	json_array_foreach(pairs, i, p) {
		const json_t *ids = json_object_get(p, "ids");

		if (i)
			strcat(s, ",");
		strcat(s, json_string_value(json_array_get(ids, 0)));
		strcat(s, " ");
		strcat(s, json_string_value(json_array_get(ids, 1)));
	}
	return s;
}

static void
assert_pairs(const json_t *pairs, const char *expected)
{
	char *got = pair_list(pairs);

	ck_assert_msg(strcmp(got, expected) == 0, "pairs: got \"%s\", expected"
		      " \"%s\"", got, expected);
	free(got);
}

static const char *
reason(const json_t *pair, size_t i)
{
	return json_string_value(json_array_get(json_object_get(pair, "reasons"),
						i));
}

/* ---------------------------------------------------------------------- */
/* Names */

static void
assert_key(const char *name, const char *expected)
{
	char *key = cs_duplicates_name_key(name);

	ck_assert_ptr_nonnull(key);
	ck_assert_msg(strcmp(key, expected) == 0,
		      "key of \"%s\": \"%s\", expected \"%s\"", name, key,
		      expected);
	free(key);
}

START_TEST(test_name_key)
{
	/* Case, accents, punctuation, stop words. */
	assert_key("Centre d'Hébergement d'urgence — OUJDA",
		   "hebergement urgence oujda");
	assert_key("CENTRE D'HEBERGEMENT D'URGENCE POUR FEMMES - OUJDA",
		   "hebergement urgence femme oujda");
	assert_key("ÉCOUTE ET ORIENTATION", "ecoute orientation");
	assert_key("Association de Lutte Contre le Sida", "lutte contre sida");
	assert_key("Fès-Médina", "fes medina");
	assert_key("  «Maison   des  Jeunes»  ", "maison jeune");
	assert_key("Bureau du HCR — Rabat", "bureau hcr rabat");
	assert_key("Centre Hospitalier Régional Al-Farabi",
		   "hospitalier regional farabi");
	/* Every Latin-1 and Latin Extended-A letter has an ASCII base. */
	assert_key("ÀÁÂÃÄÅ àáâãäåx ÇçĆćČč ÈÉÊËèéêëĘęĚě", "aaaaaa aaaaaax"
							   " cccccc eeeeeeeeeeee");
	assert_key("Œuvre Straße Æther ĲSSELMEER Łódź Şişli Ñandú Þór",
		   "oeuvre strasse aether ijsselmeer lodz sisli nandu thor");
	assert_key("Ÿ ĸ ſ ÿx ýz", "y k s yx yz");
	/* Plurals: a final s, not after s, from four letters. */
	assert_key("Femmes femme FEMMES", "femme");
	assert_key("Services progress bus", "service progress bus");
	/* Only common words: no tokens. */
	assert_key("Les Centres de l'Association", "");
	assert_key("—", "");
	assert_key("", "");
	/* Arabic: vowel marks and tatweel dropped, hamza on alef folded. */
	assert_key("مَرْكَزُ الأَمَل", "مركز الامل");
	assert_key("مـركز الإمل", "مركز الامل");
	assert_key("مركز، أمل؟", "مركز امل");
	/* Digits stay; signs separate. */
	assert_key("Antenne n°2 (Hay Salam) 24h/24", "antenne n 2 hay salam"
						     " 24h 24");
}
END_TEST

START_TEST(test_name_similarity)
{
	ck_assert(cs_duplicates_name_similarity(
			  "Centre d'hébergement d'urgence pour femmes — Oujda",
			  "CENTRE D'HEBERGEMENT D'URGENCE POUR FEMMES - OUJDA") ==
		  1.0);
	/* {ecoute, femme, oujda} / {ecoute, jeune, oujda}: 2 of 4. */
	ck_assert(cs_duplicates_name_similarity("Écoute femmes Oujda",
						"Écoute jeunes Oujda") == 0.5);
	/* 3 of 5. */
	ck_assert(cs_duplicates_name_similarity("sante jeune ecoute oujda",
						"sante jeune ecoute nador") ==
		  0.6);
	ck_assert(cs_duplicates_name_similarity("Le Centre", "Le Centre") ==
		  0.0);
	ck_assert(cs_duplicates_name_similarity("Alpha", "Beta") == 0.0);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Pairs found and not found */

/* Oujda, and 0.0009 degrees of latitude: 100 m. */
#define LAT 34.690418
#define LON -1.899263
#define M_PER_DEG_LAT 111195.08

START_TEST(test_pairs_locations)
{
	json_t *r = json_array(), *pairs;
	char a[37], b[37], c[37], d[37], e[37], f[37], g[37], h[37], i[37],
		j[37], k[37], l[37], m[37], n[37];
	char want[1024];

	/* Found: same name, other case and accents, 100 m apart. */
	json_array_append_new(
		r, location(uid(a, 1, 1), "ms2", "Centre d'écoute — Oujda", LAT,
			    LON, "02.411", "Oujda", NULL));
	json_array_append_new(
		r, location(uid(b, 1, 2), "alcs", "CENTRE D'ECOUTE - OUJDA",
			    LAT + 0.0009, LON, "02.411", NULL, NULL));
	/* Not found: the same name 50 km away, another commune. */
	json_array_append_new(
		r, location(uid(c, 2, 1), "dj", "Centre d'écoute — Oujda",
			    LAT + 0.45, LON, "02.381", "Nador", NULL));
	/* Not found: near, but another name. */
	json_array_append_new(
		r, location(uid(d, 3, 1), "cefa", "Permanence juridique", LAT,
			    LON + 0.0002, "02.411", "Oujda", NULL));
	/* Not found: the same owner as a. */
	json_array_append_new(
		r, location(uid(e, 4, 1), "ms2", "Centre d'écoute Oujda",
			    LAT + 0.0001, LON, "02.411", "Oujda", NULL));
	/* Not found: retired. */
	{
		json_t *x = location(uid(f, 5, 1), "dj", "Centre d'écoute",
				     LAT, LON, "02.411", "Oujda", NULL);

		json_object_set_new(x, "x_status", json_string("retired"));
		json_array_append_new(r, x);
	}
	/* Found through the commune alone: no coordinates, commune spelt
	 * otherwise; not with another province's commune of that name. */
	json_array_append_new(r, location(uid(g, 6, 1), "ms2",
					  "Maison des jeunes", NAN, 0,
					  "05.091", "Béni Mellal", NULL));
	json_array_append_new(r, location(uid(h, 6, 2), "shared",
					  "Maison des Jeunes", NAN, 0,
					  "05.091", "BENI-MELLAL", NULL));
	json_array_append_new(r, location(uid(i, 6, 3), "dj",
					  "Maison des Jeunes", NAN, 0,
					  "05.081", "Béni Mellal", NULL));
	/* shared and shared: one owner. */
	json_array_append_new(r, location(uid(j, 6, 4), "shared",
					  "Maison des jeunes", NAN, 0,
					  "05.091", "Beni Mellal", NULL));
	/* Across a cell boundary in latitude (33.999 is a multiple of
	 * 0.003): 222 m. */
	json_array_append_new(r, location(uid(k, 7, 1), "ms2",
					  "Dispensaire Nahda", 33.9985, -6.85,
					  "04.421", NULL, NULL));
	json_array_append_new(r, location(uid(l, 7, 2), "alcs",
					  "Dispensaire Nahda", 34.0005, -6.85,
					  "04.421", NULL, NULL));
	/* Across a cell boundary in longitude (-1.998 is a multiple of
	 * 0.006): 0.003 degrees at 34.68 degrees, 274 m. */
	json_array_append_new(r, location(uid(m, 8, 1), "ms2",
					  "Foyer Al Amal", 34.68, -1.9969,
					  "02.411", NULL, NULL));
	json_array_append_new(r, location(uid(n, 8, 2), "alcs", "Foyer Amal",
					  34.68, -1.9999, "02.411", NULL,
					  NULL));
	pairs = find(r, NULL);
	/* e is ms2's like a, but near alcs's b.  h-j is shared and shared;
	 * i is in another province. */
	snprintf(want, sizeof(want), "%s %s,%s %s,%s %s,%s %s,%s %s,%s %s", a,
		 b, b, e, g, h, g, j, k, l, m, n);
	assert_pairs(pairs, want);
	{
		const json_t *p = json_array_get(pairs, 0);

		ck_assert_str_eq(json_string_value(json_object_get(p, "type")),
				 "location");
		ck_assert_str_eq(
			json_string_value(json_array_get(
				json_object_get(p, "owners"), 0)),
			"ms2");
		ck_assert_str_eq(
			json_string_value(json_array_get(
				json_object_get(p, "owners"), 1)),
			"alcs");
		ck_assert_str_eq(reason(p, 0),
				 "names \"Centre d'écoute — Oujda\" and"
				 " \"CENTRE D'ECOUTE - OUJDA\" are alike"
				 " (1.00)");
		ck_assert_str_eq(reason(p, 1), "100 m apart");
		ck_assert_ptr_null(reason(p, 2));
		ck_assert(json_real_value(json_object_get(p, "score")) == 1.0);
		p = json_array_get(pairs, 2);
		ck_assert_str_eq(reason(p, 1), "same commune \"Béni Mellal\"");
		ck_assert_ptr_null(reason(p, 2));
		p = json_array_get(pairs, 4);
		ck_assert_str_eq(reason(p, 1), "222 m apart");
		p = json_array_get(pairs, 5);
		ck_assert_str_eq(reason(p, 0),
				 "names \"Foyer Al Amal\" and \"Foyer Amal\""
				 " are alike (1.00)");
		ck_assert_str_eq(reason(p, 1), "274 m apart");
	}
	json_decref(pairs);
	json_decref(r);
}
END_TEST

START_TEST(test_pairs_threshold)
{
	json_t *r = json_array(), *pairs;
	char a[37], b[37], c[37], d[37], e[37], f[37], g[37], h[37];
	char want[512];

	/* 290 m apart: found; 310 m: not. */
	json_array_append_new(r, location(uid(a, 1, 1), "ms2", "Espace Amal",
					  LAT, LON, "02.411", NULL, NULL));
	json_array_append_new(r, location(uid(b, 1, 2), "alcs", "Espace Amal",
					  LAT + 290 / M_PER_DEG_LAT, LON,
					  "02.411", NULL, NULL));
	json_array_append_new(r, location(uid(c, 2, 1), "ms2", "Espace Nour",
					  LAT, LON + 0.1, "02.411", NULL,
					  NULL));
	json_array_append_new(r, location(uid(d, 2, 2), "alcs", "Espace Nour",
					  LAT + 310 / M_PER_DEG_LAT, LON + 0.1,
					  "02.411", NULL, NULL));
	/* Names 3 of 5 alike: found; 2 of 4: not. */
	json_array_append_new(r, location(uid(e, 3, 1), "ms2",
					  "sante jeune ecoute oujda", LAT,
					  LON + 0.2, "02.411", NULL, NULL));
	json_array_append_new(r, location(uid(f, 3, 2), "alcs",
					  "sante jeune ecoute nador", LAT,
					  LON + 0.2, "02.411", NULL, NULL));
	json_array_append_new(r, location(uid(g, 4, 1), "ms2",
					  "ecoute femme oujda", LAT, LON + 0.3,
					  "02.411", NULL, NULL));
	json_array_append_new(r, location(uid(h, 4, 2), "alcs",
					  "ecoute jeune oujda", LAT, LON + 0.3,
					  "02.411", NULL, NULL));
	pairs = find(r, NULL);
	snprintf(want, sizeof(want), "%s %s,%s %s", a, b, e, f);
	assert_pairs(pairs, want);
	ck_assert_str_eq(reason(json_array_get(pairs, 0), 1), "290 m apart");
	ck_assert_str_eq(reason(json_array_get(pairs, 1), 0),
			 "names \"sante jeune ecoute oujda\" and \"sante jeune"
			 " ecoute nador\" are alike (0.60)");
	ck_assert(json_real_value(json_object_get(json_array_get(pairs, 1),
						  "score")) == 0.6);
	json_decref(pairs);
	json_decref(r);
}
END_TEST

START_TEST(test_pairs_services_and_organizations)
{
	json_t *r = json_array(), *pairs;
	char l1[37], l2[37], l3[37], s1[37], s2[37], s3[37], s4[37], o1[37],
		o2[37], o3[37];
	char want[512];

	uid(o1, 9, 1);
	uid(o2, 9, 2);
	uid(o3, 9, 3);
	/* Two places 100 m apart, a third far away. */
	json_array_append_new(r, location(uid(l1, 1, 1), "ms2", "Siège",
					  LAT, LON, "02.411", NULL, o1));
	json_array_append_new(r, location(uid(l2, 1, 2), "alcs", "Bureau",
					  LAT + 0.0009, LON, "02.411", NULL,
					  o2));
	json_array_append_new(r, location(uid(l3, 1, 3), "dj", "Local",
					  LAT + 1, LON, "02.411", NULL, o3));
	/* Services at them. */
	json_array_append_new(r, service(uid(s1, 2, 1), "ms2",
					 "Écoute psychologique", l1));
	json_array_append_new(r, service(uid(s2, 2, 2), "alcs",
					 "Ecoute psychologique", l2));
	json_array_append_new(r, service(uid(s3, 2, 3), "dj",
					 "Écoute psychologique", l3));
	/* No place: never suspected. */
	json_array_append_new(r, service(uid(s4, 2, 4), "cefa",
					 "Écoute psychologique", NULL));
	/* Organisations placed by their locations. */
	json_array_append_new(r, organization(o1, "ms2", "Association Nour"));
	json_array_append_new(r, organization(o2, "shared", "Nour"));
	json_array_append_new(r, organization(o3, "dj", "Association Nour"));
	pairs = find(r, NULL);
	snprintf(want, sizeof(want), "%s %s,%s %s", s1, s2, o1, o2);
	assert_pairs(pairs, want);
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_array_get(pairs, 0), "type")),
			 "service");
	ck_assert_str_eq(reason(json_array_get(pairs, 0), 1),
			 "locations 100 m apart");
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_array_get(pairs, 1), "type")),
			 "organization");
	json_decref(pairs);
	/* Types never mix: a location named like a service is no pair. */
	json_array_append_new(r, location(uid(l3, 3, 1), "cefa",
					  "Écoute psychologique", LAT, LON,
					  "02.411", NULL, NULL));
	pairs = find(r, NULL);
	assert_pairs(pairs, want);
	json_decref(pairs);
	json_decref(r);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Decisions */

START_TEST(test_decisions_exclude)
{
	json_t *r = json_array(), *pairs, *decisions;
	char a[37], b[37], c[37], d[37], e[37];
	char want[512];

	/* Three alike at one place: a-b, a-c, b-c; and d-e. */
	json_array_append_new(r, location(uid(a, 1, 1), "ms2", "Espace Amal",
					  LAT, LON, "02.411", NULL, NULL));
	json_array_append_new(r, location(uid(b, 1, 2), "alcs", "Espace Amal",
					  LAT, LON, "02.411", NULL, NULL));
	json_array_append_new(r, location(uid(c, 1, 3), "dj", "Espace Amal",
					  LAT, LON, "02.411", NULL, NULL));
	json_array_append_new(r, location(uid(d, 2, 1), "ms2", "Foyer Nour",
					  LAT, LON, "02.411", NULL, NULL));
	json_array_append_new(r, location(uid(e, 2, 2), "alcs", "Foyer Nour",
					  LAT, LON, "02.411", NULL, NULL));
	pairs = find(r, NULL);
	snprintf(want, sizeof(want), "%s %s,%s %s,%s %s,%s %s", a, b, a, c, b,
		 c, d, e);
	assert_pairs(pairs, want);
	json_decref(pairs);
	/* b-a distinct (in either order); c merged into a: gone with
	 * every pair it is in. */
	decisions = json_pack("{s:[[s, s]], s:{s:s}}", "distinct", b, a,
			      "merged", c, a);
	pairs = find(r, decisions);
	snprintf(want, sizeof(want), "%s %s", d, e);
	assert_pairs(pairs, want);
	json_decref(pairs);
	json_decref(decisions);
	/* Malformed decisions are ignored, not fatal. */
	decisions = json_pack("{s:[[s], s, [s, s]], s:[]}", "distinct", a, "x",
			      d, d, "merged");
	pairs = find(r, decisions);
	snprintf(want, sizeof(want), "%s %s,%s %s,%s %s,%s %s", a, b, a, c, b,
		 c, d, e);
	assert_pairs(pairs, want);
	json_decref(pairs);
	json_decref(decisions);
	json_decref(r);
}
END_TEST

START_TEST(test_decisions_clean_and_merge)
{
	char a[37], b[37], c[37], d[37];
	json_t *doc, *clean, *o, *t, *m1, *m2, *want;

	uid(a, 1, 1);
	uid(b, 1, 2);
	uid(c, 1, 3);
	uid(d, 1, 4);
	/* Pairs sorted, each once, the list sorted; junk dropped. */
	doc = json_pack("{s:[[s, s], [s, s], [s, s], [s, s], [s], [s, s], s],"
			" s:{s:s, s:s, s:i, s:s}, s:i}",
			"distinct", c, b, a, d, b, c, a, a, a, "NOT-AN-ID", b,
			"x", "merged", d, a, "bad", a, c, 1, b, b, "extra", 1);
	clean = cs_duplicates_decisions_clean(doc);
	want = json_pack("{s:[[s, s], [s, s]], s:{s:s}}", "distinct", a, d, b,
			 c, "merged", d, a);
	ck_assert_msg(json_equal(clean, want), "%s",
		      json_dumps(clean, JSON_COMPACT));
	json_decref(clean);
	json_decref(want);
	json_decref(doc);
	clean = cs_duplicates_decisions_clean(NULL);
	want = json_pack("{s:[], s:{}}", "distinct", "merged");
	ck_assert(json_equal(clean, want));
	json_decref(clean);
	json_decref(want);

	/* The union; a record merged into two: the smaller id; symmetric. */
	o = json_pack("{s:[[s, s]], s:{s:s, s:s}}", "distinct", a, b, "merged",
		      c, b, d, a);
	t = json_pack("{s:[[s, s], [s, s]], s:{s:s}}", "distinct", c, d, a, b,
		      "merged", c, a);
	ck_assert_int_eq(cs_duplicates_decisions_merge(&m1, NULL, o, t), 0);
	ck_assert_int_eq(cs_duplicates_decisions_merge(&m2, o, t, o), 0);
	json_decref(m2);
	ck_assert_int_eq(cs_duplicates_decisions_merge(&m2, NULL, t, o), 0);
	want = json_pack("{s:[[s, s], [s, s]], s:{s:s, s:s}}", "distinct", a,
			 b, c, d, "merged", c, a, d, a);
	ck_assert_msg(json_equal(m1, want), "%s", json_dumps(m1, JSON_COMPACT));
	ck_assert(json_equal(m2, want));
	json_decref(m1);
	json_decref(m2);
	json_decref(want);
	/* Never fails on content. */
	doc = json_pack("[i]", 1);
	ck_assert_int_eq(cs_duplicates_decisions_merge(&m1, doc, doc, o), 0);
	clean = cs_duplicates_decisions_clean(o);
	ck_assert(json_equal(m1, clean));
	json_decref(clean);
	json_decref(m1);
	json_decref(doc);
	json_decref(o);
	json_decref(t);
	want = json_pack("{s:{s:s}}", "merged", c, a);
	ck_assert_str_eq(cs_duplicates_merged_into(want, c), a);
	ck_assert_ptr_null(cs_duplicates_merged_into(want, a));
	ck_assert_ptr_null(cs_duplicates_merged_into(NULL, a));
	json_decref(want);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Determinism */

static uint64_t rng_state;

static uint32_t
rng(void)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(rng_state >> 33);
}

static double
rng_unit(void)
{
	return (double)rng() / 2147483648.0;
}

/*
 * A generated map: organizations, locations, services of six owners in
 * `ntowns` towns, names from small word lists so that many are alike, a
 * few records retired.  `planted` pairs of near-identical records are
 * added with ids of tag 0xdd (location then service each time).
 */
static const char *const owners[] = {"ms2",    "alcs", "dj",
				     "cefa",   "mdm-be", "shared"};
static const struct {
	const char *adm2, *name;
	double lat, lon;
} towns[] = {
	{"02.411", "Oujda", 34.68, -1.91},
	{"02.381", "Nador", 35.17, -2.93},
	{"04.421", "Rabat", 34.01, -6.83},
	{"07.351", "Marrakech", 31.63, -8.01},
	{"05.091", "Béni Mellal", 32.34, -6.36},
	{"03.231", "Fès", 34.03, -5.00},
	{"02.113", "Berkane", 34.92, -2.32},
};
static const char *const kinds_fr[] = {
	"Centre de santé", "Espace", "Antenne", "Bureau", "Permanence",
	"Maison", "Foyer", "Dispensaire", "Point d'écoute", "Cellule"};
static const char *const topics[] = {
	"jeunes", "femmes", "migrants", "juridique", "écoute", "santé",
	"emploi", "formation", "accueil", "orientation", "enfance", "droits"};
static const char *const quarters[] = {
	"Hay Nahda", "Hay Salam", "Al Qods", "Lazaret", "Sidi Yahya",
	"Al Massira", "Hay Hassani", "Agdal", "Takaddoum", "Yacoub El Mansour",
	"Médina", "Gueliz", "Mhamid", "Saada", "Al Wifaq", "Annasr"};

#define N(a) (sizeof(a) / sizeof(*(a)))

static void
gen_name(char *out, size_t size)
{
	snprintf(out, size, "%s %s %s %u", kinds_fr[rng() % N(kinds_fr)],
		 topics[rng() % N(topics)], quarters[rng() % N(quarters)],
		 rng() % 40);
}

static json_t *
generate(size_t n, size_t ntowns, double spread, size_t planted)
{
	json_t *r = json_array();
	char id[37], org[37], loc[37], name[160], commune[64];
	size_t norgs = n / 5, nlocs = 2 * n / 5, i;

	for (i = 0; i < norgs; i++) {
		gen_name(name, sizeof(name));
		json_array_append_new(r, organization(uid(id, 0x0a, (unsigned)i),
						      owners[rng() % N(owners)],
						      name));
	}
	for (i = 0; i < nlocs; i++) {
		size_t t = rng() % ntowns;
		json_t *x;

		gen_name(name, sizeof(name));
		snprintf(commune, sizeof(commune), "%s %u", towns[t].name,
			 rng() % 6);
		x = location(uid(id, 0x1b, (unsigned)i),
			     owners[rng() % N(owners)], name,
			     towns[t].lat + (rng_unit() - 0.5) * spread,
			     towns[t].lon + (rng_unit() - 0.5) * spread,
			     towns[t].adm2, rng() % 4 ? commune : NULL,
			     uid(org, 0x0a, rng() % (unsigned)norgs));
		if (rng() % 50 == 0)
			json_object_set_new(x, "x_status",
					    json_string("retired"));
		json_array_append_new(r, x);
	}
	for (i = 0; i < n - norgs - nlocs; i++) {
		gen_name(name, sizeof(name));
		json_array_append_new(
			r, service(uid(id, 0x2c, (unsigned)i),
				   owners[rng() % N(owners)], name,
				   uid(loc, 0x1b, rng() % (unsigned)nlocs)));
	}
	for (i = 0; i < planted; i++) {
		size_t t = rng() % ntowns;
		double lat = towns[t].lat + (rng_unit() - 0.5) * spread;
		double lon = towns[t].lon + (rng_unit() - 0.5) * spread;
		char loc2[37];

		char svc[64];

		/* Tokens no other name has, bar "refuge" and "planted". */
		snprintf(name, sizeof(name), "Refuge %zu planted %zu", i,
			 7 * i + 1000);
		snprintf(svc, sizeof(svc), "Hébergement planté %zu", i);
		json_array_append_new(
			r, location(uid(loc, 0xdd, (unsigned)(4 * i)), "ms2",
				    name, lat, lon, towns[t].adm2, NULL, NULL));
		/* The same, upper case, 50 m away, another owner. */
		for (char *p = name; *p; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 32);
		json_array_append_new(
			r, location(uid(loc2, 0xdd, (unsigned)(4 * i + 1)),
				    "alcs", name, lat + 50 / M_PER_DEG_LAT,
				    lon, towns[t].adm2, NULL, NULL));
		json_array_append_new(
			r, service(uid(id, 0xdd, (unsigned)(4 * i + 2)), "ms2",
				   svc, loc));
		/* Upper case, without accents. */
		snprintf(svc, sizeof(svc), "HEBERGEMENT PLANTE %zu", i);
		json_array_append_new(
			r, service(uid(id, 0xdd, (unsigned)(4 * i + 3)), "dj",
				   svc, loc2));
	}
	return r;
}

START_TEST(test_determinism)
{
	json_t *r, *shuffled, *p1, *p2, *p3;
	size_t n;

	rng_state = 42;
	r = generate(1500, 2, 0.02, 10);
	n = json_array_size(r);
	p1 = find(r, NULL);
	p2 = find(r, NULL);
	ck_assert(json_equal(p1, p2));
	/* Any order of the records: the same answer. */
	shuffled = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append(shuffled, json_array_get(r, (i * 7919) % n));
	ck_assert_uint_eq(json_array_size(shuffled), n); /* 7919 is prime */
	p3 = find(shuffled, NULL);
	ck_assert(json_equal(p1, p3));
	ck_assert_uint_gt(json_array_size(p1), 20);
	/* Sorted by ids, each id pair in order. */
	for (size_t i = 0; i < json_array_size(p1); i++) {
		const json_t *ids = json_object_get(json_array_get(p1, i), "ids");
		const char *a = json_string_value(json_array_get(ids, 0));
		const char *b = json_string_value(json_array_get(ids, 1));

		ck_assert_int_lt(strcmp(a, b), 0);
		if (i) {
			const json_t *prev = json_object_get(
				json_array_get(p1, i - 1), "ids");
			int c = strcmp(json_string_value(json_array_get(prev, 0)),
				       a);

			ck_assert(c < 0 ||
				  (c == 0 && strcmp(json_string_value(
							    json_array_get(prev,
									   1)),
						    b) < 0));
		}
	}
	json_decref(p1);
	json_decref(p2);
	json_decref(p3);
	json_decref(shuffled);
	json_decref(r);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* The index against the definition, every pair */

typedef struct {
	const json_t *r;
	const char *id, *type, *owner, *name;
	int active;
	double *lat, *lon;
	size_t npts;
	char **communes;
	size_t ncommunes;
} ref_rec;

static void
ref_add_place(ref_rec *to, const json_t *loc)
{
	const json_t *lat = json_object_get(loc, "latitude");
	const json_t *admin = json_object_get(loc, "x_admin");
	const char *adm3 = json_string_value(json_object_get(admin, "adm3"));

	if (lat) {
		to->lat = realloc(to->lat, (to->npts + 1) * sizeof(double));
		to->lon = realloc(to->lon, (to->npts + 1) * sizeof(double));
		to->lat[to->npts] = json_number_value(lat);
		to->lon[to->npts++] = json_number_value(
			json_object_get(loc, "longitude"));
	}
	if (adm3) {
		/* The generated communes are spelt alike: no normalising. */
		to->communes = realloc(to->communes, (to->ncommunes + 1) *
							     sizeof(char *));
		ck_assert_int_gt(asprintf(&to->communes[to->ncommunes++],
					  "%s|%s",
					  json_string_value(json_object_get(
						  admin, "adm2")),
					  adm3),
				 0);
	}
}

static double
ref_metres(double lat1, double lon1, double lat2, double lon2)
{
	double r = M_PI / 180, R = 6371008.8;
	double a = sin((lat2 - lat1) * r / 2), b = sin((lon2 - lon1) * r / 2);

	return 2 * R * asin(sqrt(a * a + cos(lat1 * r) * cos(lat2 * r) * b * b));
}

START_TEST(test_index_is_exact)
{
	json_t *r, *pairs;
	ref_rec *recs;
	size_t n, expected = 0;
	char *got, *want, *w;

	rng_state = 7;
	/* Dense: one town, 3 km wide, so that many places are shared. */
	r = generate(2000, 1, 0.03, 5);
	n = json_array_size(r);
	recs = calloc(n, sizeof(*recs));
	for (size_t i = 0; i < n; i++) {
		const json_t *x = json_array_get(r, i);
		const char *status = json_string_value(
			json_object_get(x, "x_status"));

		recs[i] = (ref_rec){x,
				    cs_record_id(x),
				    cs_record_type(x),
				    cs_record_owner(x),
				    json_string_value(json_object_get(x, "name")),
				    strcmp(status, "retired") != 0,
				    NULL, NULL, 0, NULL, 0};
	}
	/* Places: by the words of duplicates.h, not by the library's code. */
	for (size_t i = 0; i < n; i++) {
		if (strcmp(recs[i].type, "location") == 0)
			ref_add_place(&recs[i], recs[i].r);
		for (size_t j = 0; j < n; j++) {
			const json_t *sal = json_object_get(
				recs[i].r, "service_at_locations");
			const char *org = json_string_value(
				json_object_get(recs[j].r, "organization_id"));

			if (sal && strcmp(recs[j].type, "location") == 0 &&
			    strcmp(json_string_value(json_object_get(
					   json_array_get(sal, 0),
					   "location_id")),
				   recs[j].id) == 0)
				ref_add_place(&recs[i], recs[j].r);
			if (strcmp(recs[i].type, "organization") == 0 &&
			    strcmp(recs[j].type, "location") == 0 && org &&
			    strcmp(org, recs[i].id) == 0)
				ref_add_place(&recs[i], recs[j].r);
		}
	}
	want = calloc(1, n * n / 4 + 64);
	w = want;
	/* Pairs in id order: the generated records are in id order (tags
	 * 0a < 1b < 2c < dd, then counters). */
	for (size_t i = 0; i < n; i++) {
		for (size_t j = i + 1; j < n; j++) {
			const ref_rec *a = &recs[i], *b = &recs[j];
			int place = 0;

			if (!a->active || !b->active ||
			    strcmp(a->type, b->type) != 0 ||
			    strcmp(a->owner, b->owner) == 0 ||
			    cs_duplicates_name_similarity(a->name, b->name) <
				    0.6)
				continue;
			for (size_t p = 0; p < a->npts && !place; p++)
				for (size_t q = 0; q < b->npts && !place; q++)
					place = ref_metres(a->lat[p], a->lon[p],
							   b->lat[q],
							   b->lon[q]) <= 300;
			for (size_t p = 0; p < a->ncommunes && !place; p++)
				for (size_t q = 0; q < b->ncommunes && !place;
				     q++)
					place = strcmp(a->communes[p],
						       b->communes[q]) == 0;
			if (!place)
				continue;
			w += sprintf(w, "%s%s %s", expected ? "," : "", a->id,
				     b->id);
			expected++;
		}
	}
	pairs = find(r, NULL);
	got = pair_list(pairs);
	ck_assert_uint_gt(expected, 20);
	ck_assert_msg(strcmp(got, want) == 0,
		      "index: %zu pairs, definition: %zu pairs",
		      json_array_size(pairs), expected);
	free(got);
	free(want);
	for (size_t i = 0; i < n; i++) {
		for (size_t c = 0; c < recs[i].ncommunes; c++)
			free(recs[i].communes[c]);
		free(recs[i].communes);
		free(recs[i].lat);
		free(recs[i].lon);
	}
	free(recs);
	json_decref(pairs);
	json_decref(r);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* A node: the search on a commit, the decisions as signed edits */

/* The genesis as cli/cmd_init.c writes it: mdm-be coordinates. */
static void
make_genesis(void)
{
	const char *schema_dir = env("CS_SCHEMA_DIR");
	char path[PATH_MAX + 300], *tls = NULL, *line, *root;
	const cs_key *key;
	cs_key *rk;
	cs_tree_update ups[64];
	char *names_out[64];
	cs_oid ids[64];
	size_t n = 0;
	struct dirent **names;
	json_t *members, *policy = NULL, *protocol, *doc;
	int count, in_main;

	ck_assert_int_eq(cs_node_key(&key, node), 0);
	ck_assert_int_eq(cs_node_tls_hash(&tls, node), 0);
	ck_assert_int_eq(cs_key_generate(&rk), 0);
	line = cs_key_public_string(key);
	root = cs_key_public_string(rk);
	members = json_pack("{s:{s:{s:s, s:b}}, s:[{s:s, s:s, s:s, s:s, s:s}],"
			    " s:{s:i, s:[s]}}",
			    "organizations", "mdm-be", "name", "MdM Belgique",
			    "removed", 0, "keys", "key", line, "org", "mdm-be",
			    "holder", "coordination node", "role",
			    "coordinator", "tls", tls, "root", "threshold", 1,
			    "keys", root);
	protocol = json_pack("{s:i, s:s}", "protocol", CS_PROTOCOL_VERSION,
			     "merge", CS_MERGE_ALGORITHM);
	snprintf(path, sizeof(path), "%s/default-policy.json", schema_dir);
	ck_assert_int_eq(cs_json_load_file(&policy, path), 0);
	names_out[n] = strdup(CS_PATH_MEMBERS);
	ck_assert_int_eq(cs_node_write_json(&ids[n++], node, members), 0);
	names_out[n] = strdup(CS_PATH_POLICY);
	ck_assert_int_eq(cs_node_write_json(&ids[n++], node, policy), 0);
	names_out[n] = strdup(CS_PATH_PROTOCOL);
	ck_assert_int_eq(cs_node_write_json(&ids[n++], node, protocol), 0);
	count = scandir(schema_dir, &names, NULL, alphasort);
	ck_assert_int_gt(count, 0);
	for (int i = 0; i < count; i++) {
		const char *name = names[i]->d_name;
		size_t len = strlen(name);

		if (len > 12 && strcmp(name + len - 12, ".schema.json") == 0) {
			snprintf(path, sizeof(path), "%s/%s", schema_dir, name);
			ck_assert_int_eq(cs_json_load_file(&doc, path), 0);
			ck_assert_int_gt(asprintf(&names_out[n],
						  CS_PATH_SCHEMA_DIR "/%s",
						  name),
					 0);
			ck_assert_int_eq(cs_node_write_json(&ids[n++], node,
							    doc),
					 0);
			json_decref(doc);
		}
		free(names[i]);
	}
	free(names);
	for (size_t i = 0; i < n; i++)
		ups[i] = (cs_tree_update){names_out[i], &ids[i]};
	ck_assert_msg(cs_node_commit(&genesis, &in_main, node, NULL, ups, n,
				     "Genesis\n") == 0,
		      "%s", cs_error_last());
	ck_assert_int_eq(cs_node_set_genesis(node, &genesis), 0);
	for (size_t i = 0; i < n; i++)
		free(names_out[i]);
	free(line);
	free(root);
	free(tls);
	cs_key_free(rk);
	json_decref(members);
	json_decref(policy);
	json_decref(protocol);
}

static void
setup(void)
{
	char dir[128];

	snprintf(tmpdir, sizeof(tmpdir), "%s/t-XXXXXX", basedir);
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	umask(022);
	snprintf(dir, sizeof(dir), "%s/coord", tmpdir);
	ck_assert_msg(cs_node_create(&node, dir, "mdm-be") == 0, "%s",
		      cs_error_last());
	repo = cs_node_repo(node);
	/* Durability is not what these tests check: no fsync per object
	 * (libgit2 is set up by now, and keeps this setting). */
	git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 0);
	make_genesis();
}

static void
teardown(void)
{
	char cmd[128];

	cs_node_free(node);
	node = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Write every record of `records` on top of `base` in one edit. */
static cs_oid
write_records(const cs_oid *base, const json_t *records)
{
	size_t n = json_array_size(records);
	cs_tree_update *ups = calloc(n, sizeof(*ups));
	cs_oid *ids = calloc(n, sizeof(*ids)), out;
	char **paths = calloc(n, sizeof(*paths));
	int in_main;

	for (size_t i = 0; i < n; i++) {
		const json_t *r = json_array_get(records, i);

		ck_assert_msg(cs_record_path(&paths[i], r) == 0, "%s",
			      cs_error_last());
		ck_assert_int_eq(cs_node_write_json(&ids[i], node, r), 0);
		ups[i] = (cs_tree_update){paths[i], &ids[i]};
	}
	ck_assert_msg(cs_node_commit(&out, &in_main, node, base, ups, n,
				     "records\n") == 0,
		      "%s", cs_error_last());
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	free(ups);
	free(ids);
	return out;
}

/* Read a file of a commit's tree. */
static json_t *
read_at(const cs_oid *commit, const char *path)
{
	cs_oid tree, blob;
	char *buf = NULL;
	size_t len = 0;
	json_t *doc = NULL;

	ck_assert_int_eq(cs_repo_commit_tree(&tree, repo, commit), 0);
	if (cs_repo_tree_lookup(&blob, NULL, repo, &tree, path) < 0)
		return NULL;
	ck_assert_int_eq(cs_repo_read_blob(&buf, &len, repo, &blob, 1 << 20),
			 0);
	ck_assert_int_eq(cs_json_parse(&doc, buf, len, path), 0);
	free(buf);
	return doc;
}

START_TEST(test_node_decisions)
{
	json_t *r = json_array(), *pairs, *decisions, *want, *rec;
	char a[37], b[37], c[37], d[37], s[37], x[37], list[512];
	cs_oid loaded, c1, c2, c3, c4;
	int in_main;

	json_array_append_new(r, location(uid(a, 1, 1), "ms2", "Espace Amal",
					  LAT, LON, "02.411", "Oujda", NULL));
	json_array_append_new(r, location(uid(b, 1, 2), "alcs", "ESPACE AMAL",
					  LAT + 0.0009, LON, "02.411", NULL,
					  NULL));
	json_array_append_new(r, location(uid(c, 2, 1), "ms2", "Foyer Nour",
					  LAT, LON, "02.411", NULL, NULL));
	json_array_append_new(r, location(uid(d, 2, 2), "shared",
					  "Foyer Nour", LAT, LON, "02.411",
					  NULL, NULL));
	json_array_append_new(r, service(uid(s, 3, 1), "ms2", "Foyer Nour",
					 c));
	loaded = write_records(&genesis, r);

	/* From the commit, as from the records. */
	ck_assert_msg(cs_duplicates_find(&pairs, repo, &loaded) == 0, "%s",
		      cs_error_last());
	want = find(r, NULL);
	ck_assert(json_equal(pairs, want));
	snprintf(list, sizeof(list), "%s %s,%s %s", a, b, c, d);
	assert_pairs(pairs, list);
	json_decref(pairs);
	json_decref(want);
	ck_assert_int_eq(cs_duplicates_decisions(&decisions, repo, &loaded), 0);
	want = json_pack("{s:[], s:{}}", "distinct", "merged");
	ck_assert(json_equal(decisions, want));
	json_decref(want);
	json_decref(decisions);

	/* Distinct: c-d; again: CS_EEXISTS, nothing committed. */
	ck_assert_msg(cs_duplicates_mark_distinct(&c1, &in_main, node, &loaded,
						  d, c) == 0,
		      "%s", cs_error_last());
	ck_assert(in_main);
	ck_assert_int_eq(cs_duplicates_mark_distinct(&c2, &in_main, node, &c1,
						     c, d),
			 CS_EEXISTS);
	ck_assert_int_eq(cs_duplicates_mark_distinct(&c2, &in_main, node, &c1,
						     c, c),
			 CS_EINVALID);
	ck_assert_int_eq(cs_duplicates_mark_distinct(
				 &c2, &in_main, node, &c1, c,
				 "99999999-0000-4000-8000-000000000000"),
			 CS_ENOTFOUND);
	ck_assert_int_eq(cs_duplicates_mark_distinct(&c2, &in_main, node, &c1,
						     c, "../../x"),
			 CS_EINVALID);
	ck_assert_int_eq(cs_duplicates_find(&pairs, repo, &c1), 0);
	snprintf(list, sizeof(list), "%s %s", a, b);
	assert_pairs(pairs, list);
	json_decref(pairs);

	/* Merge b into a: b retired, the redirect recorded, one edit. */
	ck_assert_int_eq(cs_duplicates_mark_merged(&c2, &in_main, node, &c1, a,
						   s),
			 CS_EINVALID); /* a location and a service */
	ck_assert_int_eq(cs_duplicates_mark_merged(&c2, &in_main, node, &c1, a,
						   a),
			 CS_EINVALID);
	ck_assert_msg(cs_duplicates_mark_merged(&c2, &in_main, node, &c1, a,
						b) == 0,
		      "%s", cs_error_last());
	ck_assert(in_main);
	ck_assert_int_eq(cs_map_find(&rec, NULL, repo, &c2, b), 0);
	ck_assert_str_eq(json_string_value(json_object_get(rec, "x_status")),
			 "retired");
	json_decref(rec);
	ck_assert_int_eq(cs_map_find(&rec, NULL, repo, &c2, a), 0);
	ck_assert_str_eq(json_string_value(json_object_get(rec, "x_status")),
			 "proposed");
	json_decref(rec);
	decisions = read_at(&c2, CS_PATH_DUPLICATES);
	want = json_pack("{s:[[s, s]], s:{s:s}}", "distinct", c, d, "merged",
			 b, a);
	ck_assert_msg(json_equal(decisions, want), "%s",
		      json_dumps(decisions, JSON_COMPACT));
	json_decref(want);
	json_decref(decisions);
	ck_assert_int_eq(cs_duplicates_find(&pairs, repo, &c2), 0);
	ck_assert_uint_eq(json_array_size(pairs), 0);
	json_decref(pairs);
	/* Again: CS_EEXISTS; b into another: merged already; into b:
	 * retired. */
	ck_assert_int_eq(cs_duplicates_mark_merged(&c3, &in_main, node, &c2, a,
						   b),
			 CS_EEXISTS);
	ck_assert_int_eq(cs_duplicates_mark_merged(&c3, &in_main, node, &c2, c,
						   b),
			 CS_EINVALID);
	ck_assert_msg(strstr(cs_error_last(), "is merged into") != NULL, "%s",
		      cs_error_last());
	ck_assert_int_eq(cs_duplicates_mark_merged(&c3, &in_main, node, &c2, b,
						   a),
			 CS_EINVALID);
	snprintf(list, sizeof(list), "record %s is retired: keep a record in"
		 " use", b);
	ck_assert_str_eq(cs_error_last(), list);

	/* Two decisions on one base, concurrently: the merge of histories
	 * holds both (the union), and a record merged into two records on
	 * the two sides stays merged into the smaller id. */
	ck_assert_int_eq(cs_duplicates_mark_distinct(&c3, &in_main, node,
						     &c1, a, b),
			 0);
	ck_assert(!in_main); /* held: main is c2 */
	{
		cs_history *h = NULL;
		cs_oid heads[2] = {c2, c3}, merged;

		ck_assert_int_eq(cs_history_load(&h, repo, heads, 2), 0);
		ck_assert_msg(cs_history_merge(&merged, h, &c2, &c3) == 0,
			      "%s", cs_error_last());
		decisions = read_at(&merged, CS_PATH_DUPLICATES);
		want = json_pack("{s:[[s, s], [s, s]], s:{s:s}}", "distinct",
				 a, b, c, d, "merged", b, a);
		ck_assert_msg(json_equal(decisions, want), "%s",
			      json_dumps(decisions, JSON_COMPACT));
		json_decref(want);
		json_decref(decisions);
		cs_history_free(h);
	}
	json_decref(r);
	r = json_array();
	json_array_append_new(r, location(uid(x, 1, 3), "dj", "Espace Amal",
					  LAT, LON, "02.411", NULL, NULL));
	loaded = write_records(&c2, r);
	/* Concurrently on one base: x into a, and x into c. */
	ck_assert_int_eq(cs_duplicates_mark_merged(&c3, &in_main, node,
						   &loaded, a, x),
			 0);
	ck_assert_int_eq(cs_duplicates_mark_merged(&c4, &in_main, node,
						   &loaded, c, x),
			 0);
	{
		cs_history *h = NULL;
		cs_oid heads[2] = {c3, c4}, merged;

		ck_assert_int_eq(cs_history_load(&h, repo, heads, 2), 0);
		ck_assert_msg(cs_history_merge(&merged, h, &c3, &c4) == 0,
			      "%s", cs_error_last());
		decisions = read_at(&merged, CS_PATH_DUPLICATES);
		ck_assert_str_eq(cs_duplicates_merged_into(decisions, x),
				 strcmp(a, c) < 0 ? a : c);
		json_decref(decisions);
		cs_history_free(h);
	}
	json_decref(r);
}
END_TEST

/* Verification judges the decisions file by its schema. */
START_TEST(test_node_schema)
{
	json_t *bad;
	cs_oid blob, out;
	cs_tree_update up = {CS_PATH_DUPLICATES, &blob};
	int in_main;

	bad = json_pack("{s:[[s, s]], s:{}}", "distinct", "a", "b", "merged");
	ck_assert_int_eq(cs_node_write_json(&blob, node, bad), 0);
	ck_assert_int_eq(cs_node_commit(&out, &in_main, node, &genesis, &up, 1,
					"bad\n"),
			 CS_EINVALID);
	ck_assert_msg(strstr(cs_error_last(), CS_PATH_DUPLICATES) != NULL,
		      "%s", cs_error_last());
	json_decref(bad);
	bad = json_pack("{s:[], s:{}, s:i}", "distinct", "merged", "more", 1);
	ck_assert_int_eq(cs_node_write_json(&blob, node, bad), 0);
	ck_assert_int_eq(cs_node_commit(&out, &in_main, node, &genesis, &up, 1,
					"bad\n"),
			 CS_EINVALID);
	json_decref(bad);
	bad = json_pack("{s:[], s:{}}", "distinct", "merged");
	ck_assert_int_eq(cs_node_write_json(&blob, node, bad), 0);
	ck_assert_msg(cs_node_commit(&out, &in_main, node, &genesis, &up, 1,
				     "good\n") == 0,
		      "%s", cs_error_last());
	json_decref(bad);
}
END_TEST

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sanitizers slow everything down several times. */
#if defined(__SANITIZE_ADDRESS__)
#define SLOWER 4
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLOWER 4
#endif
#endif
#ifndef SLOWER
#define SLOWER 1
#endif

/* 20,000 records of seven towns, 100 planted pairs: all found, in a few
 * seconds, reading every record from the commit. */
START_TEST(test_scale)
{
	json_t *r, *pairs;
	cs_oid loaded;
	double t0, took;
	size_t planted_found = 0;

	rng_state = 2025;
	r = generate(20000 - 400, N(towns), 0.08, 100);
	ck_assert_uint_eq(json_array_size(r), 20000);
	t0 = now();
	loaded = write_records(&genesis, r);
	fprintf(stderr, "duplicates: 20,000 records written in %.2f s\n",
		now() - t0);
	t0 = now();
	ck_assert_int_eq(cs_duplicates_find_in(&pairs, r, NULL), 0);
	fprintf(stderr, "duplicates: 20,000 records in memory: %.2f s\n",
		now() - t0);
	json_decref(pairs);
	t0 = now();
	ck_assert_msg(cs_duplicates_find(&pairs, repo, &loaded) == 0, "%s",
		      cs_error_last());
	took = now() - t0;
	fprintf(stderr, "duplicates: 20,000 records, %zu pairs, %.2f s\n",
		json_array_size(pairs), took);
	for (size_t i = 0; i < json_array_size(pairs); i++) {
		const json_t *ids = json_object_get(json_array_get(pairs, i),
						    "ids");
		const char *a = json_string_value(json_array_get(ids, 0));
		const char *b = json_string_value(json_array_get(ids, 1));

		if (strncmp(a, "000000dd", 8) == 0 &&
		    strncmp(b, "000000dd", 8) == 0) {
			unsigned na = (unsigned)strtoul(a + 24, NULL, 16);
			unsigned nb = (unsigned)strtoul(b + 24, NULL, 16);

			/* 4i and 4i+1 (locations), 4i+2 and 4i+3
			 * (services). */
			ck_assert_uint_eq(nb, na + 1);
			ck_assert_uint_eq(na % 2, 0);
			planted_found++;
		}
	}
	ck_assert_uint_eq(planted_found, 200);
	ck_assert_msg(took < 5.0 * SLOWER, "%.2f s for 20,000 records", took);
	json_decref(pairs);
	json_decref(r);
}
END_TEST

static Suite *
duplicates_suite(void)
{
	Suite *s = suite_create("duplicates");
	TCase *names = tcase_create("names");
	TCase *pairs = tcase_create("pairs");
	TCase *nodes = tcase_create("node");

	tcase_add_test(names, test_name_key);
	tcase_add_test(names, test_name_similarity);
	suite_add_tcase(s, names);
	tcase_set_timeout(pairs, 120);
	tcase_add_test(pairs, test_pairs_locations);
	tcase_add_test(pairs, test_pairs_threshold);
	tcase_add_test(pairs, test_pairs_services_and_organizations);
	tcase_add_test(pairs, test_decisions_exclude);
	tcase_add_test(pairs, test_decisions_clean_and_merge);
	tcase_add_test(pairs, test_determinism);
	tcase_add_test(pairs, test_index_is_exact);
	suite_add_tcase(s, pairs);
	tcase_add_unchecked_fixture(nodes, make_basedir, remove_basedir);
	tcase_add_checked_fixture(nodes, setup, teardown);
	tcase_set_timeout(nodes, 240);
	tcase_add_test(nodes, test_node_decisions);
	tcase_add_test(nodes, test_node_schema);
	tcase_add_test(nodes, test_scale);
	suite_add_tcase(s, nodes);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(duplicates_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
