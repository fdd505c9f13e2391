/*
 * cartosync — the consortium as of a commit: keys and roles, what each may
 * write under the default policy (schema/default-policy.json), which
 * changes move power (coordinator keys, root set, threshold), root
 * approvals with their forgeries (too few, the same key twice, another
 * change, a non-root key, another namespace), and malformed members files
 * refused with a message naming the problem.
 */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/consortium.h"
#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/key.h"
#include "cartosync/oid.h"
#include "cartosync/schema.h"
#include "cartosync/sshsig.h"

#define TLS "sha256:0000000000000000000000000000000000000000000000000000000000000000"

enum { COORD, MS2, ALCS, MS2_REVOKED, GONE, COORD2, MS2_NEW, NKEYS };
enum { R1, R2, R3, R4, NROOT };

static cs_key *keys[NKEYS];
static cs_key *roots[NROOT];
static char *pub[NKEYS];
static char *rpub[NROOT];

static void
setup(void)
{
	for (int i = 0; i < NKEYS; i++) {
		ck_assert_int_eq(cs_key_generate(&keys[i]), 0);
		pub[i] = cs_key_public_string(keys[i]);
	}
	for (int i = 0; i < NROOT; i++) {
		ck_assert_int_eq(cs_key_generate(&roots[i]), 0);
		rpub[i] = cs_key_public_string(roots[i]);
	}
}

static void
teardown(void)
{
	for (int i = 0; i < NKEYS; i++) {
		cs_key_free(keys[i]);
		free(pub[i]);
	}
	for (int i = 0; i < NROOT; i++) {
		cs_key_free(roots[i]);
		free(rpub[i]);
	}
}

static json_t *
key_entry(int k, const char *org, const char *role, int revoked)
{
	json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:s}", "key", pub[k], "org",
			      org, "role", role, "holder", "a node", "tls",
			      TLS);

	if (revoked)
		json_object_set_new(e, "revoked",
				    json_pack("{s:s, s:s}", "date",
					      "2025-02-14", "reason",
					      "lost laptop"));
	return e;
}

/* The base members file: mdm-be coordinates, ms2 and alcs are members,
 * "gone" was removed, one ms2 key is revoked; root 2 of 3. */
static json_t *
base_members(void)
{
	json_t *m = json_pack(
		"{s:{s:{s:s, s:b}, s:{s:s, s:b}, s:{s:s, s:b}, s:{s:s, s:b}},"
		" s:[], s:{s:i, s:[s, s, s]}}",
		"organizations", "mdm-be", "name", "Médecins du Monde",
		"removed", 0, "ms2", "name", "MS2", "removed", 0, "alcs", "name",
		"ALCS", "removed", 0, "gone", "name", "Gone", "removed", 1,
		"keys", "root", "threshold", 2, "keys", rpub[R1], rpub[R2],
		rpub[R3]);
	json_t *k = json_object_get(m, "keys");

	ck_assert_ptr_nonnull(m);
	json_array_append_new(k, key_entry(COORD, "mdm-be", "coordinator", 0));
	json_array_append_new(k, key_entry(MS2, "ms2", "member", 0));
	json_array_append_new(k, key_entry(ALCS, "alcs", "member", 0));
	json_array_append_new(k, key_entry(MS2_REVOKED, "ms2", "member", 1));
	json_array_append_new(k, key_entry(GONE, "gone", "member", 0));
	return m;
}

static json_t *
default_policy(void)
{
	const char *dir = getenv("CS_SCHEMA_DIR");
	char path[PATH_MAX];
	json_t *p = NULL;

	ck_assert_msg(dir != NULL, "CS_SCHEMA_DIR is not set");
	snprintf(path, sizeof(path), "%s/default-policy.json", dir);
	ck_assert_msg(cs_json_load_file(&p, path) == 0, "%s",
		      cs_error_last());
	return p;
}

static json_t *
protocol(int version)
{
	return json_pack("{s:i, s:s}", "protocol", version, "merge",
			 CS_MERGE_ALGORITHM);
}

static int
build(cs_consortium **out, const json_t *members)
{
	json_t *policy = default_policy(), *proto = protocol(1);
	cs_schema_set *set = NULL;
	int rc;

	ck_assert_int_eq(cs_schema_set_new(&set), 0);
	rc = cs_consortium_from_json(out, members, policy, proto, set);
	json_decref(policy);
	json_decref(proto);
	return rc;
}

static cs_consortium *
consortium_of(const json_t *members)
{
	cs_consortium *c = NULL;

	ck_assert_msg(build(&c, members) == 0, "%s", cs_error_last());
	ck_assert_ptr_nonnull(c);
	return c;
}

/* ---------------------------------------------------------------------- */

START_TEST(test_keys)
{
	json_t *m = base_members();
	cs_consortium *c = consortium_of(m);
	const cs_member_key *k;
	char *fp;

	ck_assert_uint_eq(cs_consortium_key_count(c), 5);
	ck_assert_ptr_null(cs_consortium_key_at(c, 5));
	k = cs_consortium_key_at(c, 0);
	ck_assert(cs_key_equal(k->key, keys[COORD]));
	ck_assert_int_eq(k->role, CS_ROLE_COORDINATOR);

	k = cs_consortium_find_key(c, keys[MS2]);
	ck_assert_ptr_nonnull(k);
	ck_assert_str_eq(k->org, "ms2");
	ck_assert_int_eq(k->role, CS_ROLE_MEMBER);
	ck_assert_int_eq(k->revoked, 0);
	ck_assert_str_eq(k->holder, "a node");
	ck_assert_str_eq(k->tls, TLS);
	fp = cs_key_fingerprint(keys[MS2]);
	ck_assert_str_eq(k->fingerprint, fp);
	free(fp);

	k = cs_consortium_find_key(c, keys[MS2_REVOKED]);
	ck_assert_ptr_nonnull(k);
	ck_assert_int_ne(k->revoked, 0);

	k = cs_consortium_find_key(c, roots[R2]);
	ck_assert_ptr_nonnull(k);
	ck_assert_int_eq(k->role, CS_ROLE_ROOT);
	ck_assert_ptr_null(k->org);

	ck_assert_ptr_null(cs_consortium_find_key(c, keys[COORD2]));
	ck_assert_ptr_null(cs_consortium_find_key(c, roots[R4]));

	ck_assert(cs_consortium_org_active(c, "ms2"));
	ck_assert(!cs_consortium_org_active(c, "gone"));
	ck_assert(!cs_consortium_org_active(c, "nobody"));
	ck_assert_str_eq(cs_consortium_org_name(c, "mdm-be"),
			 "Médecins du Monde");
	ck_assert_ptr_null(cs_consortium_org_name(c, "nobody"));
	ck_assert_int_eq(cs_consortium_root_threshold(c), 2);
	ck_assert(cs_consortium_is_root_key(c, roots[R3]));
	ck_assert(!cs_consortium_is_root_key(c, roots[R4]));
	ck_assert(!cs_consortium_is_root_key(c, keys[COORD]));
	ck_assert_int_eq(cs_consortium_protocol(c), 1);
	ck_assert_ptr_nonnull(cs_consortium_schemas(c));
	ck_assert(json_equal((json_t *)cs_consortium_members(c), m));
	ck_assert_ptr_nonnull(json_object_get(cs_consortium_policy(c),
					      "write"));
	cs_consortium_free(c);
	cs_consortium_free(NULL);

	/* A key both a member's and the root's: the member entry first. */
	json_array_append_new(json_object_get(json_object_get(m, "root"),
					      "keys"),
			      json_string(pub[MS2]));
	c = consortium_of(m);
	k = cs_consortium_find_key(c, keys[MS2]);
	ck_assert_int_eq(k->role, CS_ROLE_MEMBER);
	ck_assert(cs_consortium_is_root_key(c, keys[MS2]));
	cs_consortium_free(c);
	json_decref(m);
}
END_TEST

#define ID "ab0e2f8c-5d1a-4c3b-9e7f-0a1b2c3d4e5f"

START_TEST(test_policy_member)
{
	json_t *m = base_members();
	cs_consortium *c = consortium_of(m);
	const cs_member_key *ms2 = cs_consortium_find_key(c, keys[MS2]);
	static const char *const allowed[] = {
		"records/ms2/service/ab/" ID ".json",
		"records/ms2/x.json",
		"records/shared/organization/ab/" ID ".json",
	};
	static const char *const refused[] = {
		"records/alcs/service/ab/" ID ".json",
		"records/mdm-be/service/ab/" ID ".json",
		"records/ms2x/service/ab/" ID ".json",
		"records/ms/service/ab/" ID ".json",
		"records/ms2",
		"records/ms2/",
		"records/shared",
		"records",
		"consortium/members.json",
		"consortium/policy.json",
		"consortium/root-approval.json",
		"conflicts/ab/" ID ".json",
		"notes.txt",
		"",
		"Records/ms2/service/ab/" ID ".json",
		"x/records/ms2/service/ab/" ID ".json",
	};

	for (size_t i = 0; i < sizeof(allowed) / sizeof(*allowed); i++)
		ck_assert_msg(cs_policy_allows(c, ms2, allowed[i]),
			      "ms2 may not write %s", allowed[i]);
	for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++)
		ck_assert_msg(!cs_policy_allows(c, ms2, refused[i]),
			      "ms2 may write %s", refused[i]);

	/* Revoked, removed organisation, unknown: nothing. */
	ck_assert(!cs_policy_allows(c, cs_consortium_find_key(
						  c, keys[MS2_REVOKED]),
				    "records/ms2/service/ab/" ID ".json"));
	ck_assert(!cs_policy_allows(c, cs_consortium_find_key(c, keys[GONE]),
				    "records/gone/service/ab/" ID ".json"));
	ck_assert(!cs_policy_allows(c, cs_consortium_find_key(c, keys[GONE]),
				    "records/shared/service/ab/" ID ".json"));
	ck_assert(!cs_policy_allows(c, NULL, "records/ms2/x.json"));
	cs_consortium_free(c);
	json_decref(m);
}
END_TEST

START_TEST(test_policy_coordinator_and_root)
{
	json_t *m = base_members();
	cs_consortium *c = consortium_of(m);
	const cs_member_key *coord = cs_consortium_find_key(c, keys[COORD]);
	const cs_member_key *root = cs_consortium_find_key(c, roots[R1]);

	ck_assert(cs_policy_allows(c, coord, "records/alcs/service/ab/" ID
					     ".json"));
	ck_assert(cs_policy_allows(c, coord, "records/mdm-be/x.json"));
	ck_assert(cs_policy_allows(c, coord, "consortium/members.json"));
	ck_assert(cs_policy_allows(c, coord, "consortium/policy.json"));
	ck_assert(cs_policy_allows(c, coord,
				   "consortium/schema/service.schema.json"));
	ck_assert(cs_policy_allows(c, coord, "conflicts/ab/" ID ".json"));
	ck_assert(!cs_policy_allows(c, coord, "records"));
	ck_assert(!cs_policy_allows(c, coord, "consortium"));
	ck_assert(!cs_policy_allows(c, coord, "notes.txt"));
	ck_assert(!cs_policy_allows(c, coord, "keys/signing_key"));

	ck_assert(cs_policy_allows(c, root, "consortium/members.json"));
	ck_assert(cs_policy_allows(c, root, "consortium/root-approval.json"));
	ck_assert(!cs_policy_allows(c, root, "consortium/policy.json"));
	ck_assert(!cs_policy_allows(c, root, "consortium/protocol.json"));
	ck_assert(!cs_policy_allows(c, root, "records/ms2/x.json"));
	ck_assert(!cs_policy_allows(c, root, "consortium/members.json/x"));
	cs_consortium_free(c);

	/* A revoked coordinator key writes nothing. */
	json_object_set_new(json_array_get(json_object_get(m, "keys"), 0),
			    "revoked",
			    json_pack("{s:s, s:s}", "date", "2025-03-01",
				      "reason", "stolen"));
	c = consortium_of(m);
	ck_assert(!cs_policy_allows(c, cs_consortium_find_key(c, keys[COORD]),
				    "consortium/members.json"));
	cs_consortium_free(c);
	json_decref(m);
}
END_TEST

/* ---------------------------------------------------------------------- */

static json_t *
keys_of(json_t *m)
{
	return json_object_get(m, "keys");
}

static json_t *
root_keys_of(json_t *m)
{
	return json_object_get(json_object_get(m, "root"), "keys");
}

static int
changed(json_t *after_members)
{
	json_t *m = base_members();
	cs_consortium *before = consortium_of(m), *after;
	int rc;

	after = consortium_of(after_members);
	rc = cs_consortium_power_changed(before, after);
	ck_assert_int_eq(cs_consortium_power_changed(after, before), rc);
	cs_consortium_free(before);
	cs_consortium_free(after);
	json_decref(m);
	json_decref(after_members);
	return rc;
}

START_TEST(test_power_changed)
{
	json_t *m;

	ck_assert(!changed(base_members()));

	/* A coordinator key added. */
	m = base_members();
	json_array_append_new(keys_of(m),
			      key_entry(COORD2, "mdm-be", "coordinator", 0));
	ck_assert(changed(m));

	/* The coordinator key revoked. */
	m = base_members();
	json_object_set_new(json_array_get(keys_of(m), 0), "revoked",
			    json_pack("{s:s, s:s}", "date", "2025-03-01",
				      "reason", "stolen"));
	ck_assert(changed(m));

	/* The coordinator key made a member key. */
	m = base_members();
	json_object_set_new(json_array_get(keys_of(m), 0), "role",
			    json_string("member"));
	ck_assert(changed(m));

	/* A member promoted to coordinator. */
	m = base_members();
	json_object_set_new(json_array_get(keys_of(m), 1), "role",
			    json_string("coordinator"));
	ck_assert(changed(m));

	/* The coordinator's organisation removed. */
	m = base_members();
	json_object_set_new(json_object_get(json_object_get(m,
							    "organizations"),
					    "mdm-be"),
			    "removed", json_true());
	ck_assert(changed(m));

	/* The threshold. */
	m = base_members();
	json_object_set_new(json_object_get(m, "root"), "threshold",
			    json_integer(3));
	ck_assert(changed(m));

	/* A root key replaced, added, removed. */
	m = base_members();
	json_array_set_new(root_keys_of(m), 2, json_string(rpub[R4]));
	ck_assert(changed(m));
	m = base_members();
	json_array_append_new(root_keys_of(m), json_string(rpub[R4]));
	ck_assert(changed(m));
	m = base_members();
	json_array_remove(root_keys_of(m), 2);
	ck_assert(changed(m));

	/* Member keys come and go without the root. */
	m = base_members();
	json_array_append_new(keys_of(m), key_entry(MS2_NEW, "ms2", "member",
						    0));
	ck_assert(!changed(m));
	m = base_members();
	json_object_set_new(json_array_get(keys_of(m), 1), "revoked",
			    json_pack("{s:s, s:s}", "date", "2025-03-01",
				      "reason", "left"));
	ck_assert(!changed(m));
	m = base_members();
	json_object_set_new(json_object_get(json_object_get(m,
							    "organizations"),
					    "alcs"),
			    "removed", json_true());
	ck_assert(!changed(m));
	/* Order does not matter. */
	m = base_members();
	json_array_append(keys_of(m), json_array_get(keys_of(m), 0));
	json_array_remove(keys_of(m), 0);
	json_array_append(root_keys_of(m), json_array_get(root_keys_of(m), 0));
	json_array_remove(root_keys_of(m), 0);
	ck_assert(!changed(m));
}
END_TEST

/* ---------------------------------------------------------------------- */

static char *
root_sign(const cs_key *key, const char *ns, const cs_oid *parent,
	  const cs_oid *blob)
{
	char *msg = cs_root_approval_message(parent, blob), *armor;

	ck_assert_ptr_nonnull(msg);
	ck_assert_int_eq(cs_sshsig_sign(&armor, key, ns, (const uint8_t *)msg,
					strlen(msg)),
			 0);
	free(msg);
	return armor;
}

static json_t *
approval(const cs_oid *parent, const cs_oid *blob, char **sigs, int n)
{
	char p[CS_OID_HEXSZ + 1], b[CS_OID_HEXSZ + 1];
	json_t *a, *list = json_array();

	cs_oid_fmt(p, parent);
	cs_oid_fmt(b, blob);
	for (int i = 0; i < n; i++)
		json_array_append_new(list, json_string(sigs[i]));
	a = json_pack("{s:s, s:s, s:o}", "parent", p, "members", b,
		      "signatures", list);
	return a;
}

static int
check(const cs_consortium *c, char **sigs, int n, const cs_oid *parent,
      const cs_oid *blob)
{
	json_t *a = approval(parent, blob, sigs, n);
	int rc = cs_root_approval_check(c, a, parent, blob);

	json_decref(a);
	return rc;
}

START_TEST(test_root_approval)
{
	json_t *m = base_members();
	cs_consortium *c = consortium_of(m);
	cs_oid parent, blob, other;
	char ph[CS_OID_HEXSZ + 1], bh[CS_OID_HEXSZ + 1], expect[256];
	char *msg, *s1, *s2, *s3, *s4, *coord, *gitns, *wrong;
	char *sigs[4];
	json_t *a;

	memset(parent.id, 0xa1, sizeof(parent.id));
	memset(blob.id, 0xb2, sizeof(blob.id));
	memset(other.id, 0xc3, sizeof(other.id));
	cs_oid_fmt(ph, &parent);
	cs_oid_fmt(bh, &blob);

	msg = cs_root_approval_message(&parent, &blob);
	snprintf(expect, sizeof(expect),
		 "cartosync-root-approval/1\nparent %s\nmembers %s\n", ph, bh);
	ck_assert_str_eq(msg, expect);
	free(msg);

	s1 = root_sign(roots[R1], CS_SSHSIG_NAMESPACE_ROOT, &parent, &blob);
	s2 = root_sign(roots[R2], CS_SSHSIG_NAMESPACE_ROOT, &parent, &blob);
	s3 = root_sign(roots[R3], CS_SSHSIG_NAMESPACE_ROOT, &parent, &blob);
	s4 = root_sign(roots[R4], CS_SSHSIG_NAMESPACE_ROOT, &parent, &blob);
	coord = root_sign(keys[COORD], CS_SSHSIG_NAMESPACE_ROOT, &parent,
			  &blob);
	gitns = root_sign(roots[R2], CS_SSHSIG_NAMESPACE_GIT, &parent, &blob);
	wrong = root_sign(roots[R2], CS_SSHSIG_NAMESPACE_ROOT, &other, &blob);

	/* The threshold met by distinct root keys. */
	sigs[0] = s1, sigs[1] = s2;
	ck_assert_msg(check(c, sigs, 2, &parent, &blob) == 0, "%s",
		      cs_error_last());
	sigs[0] = s3, sigs[1] = s1, sigs[2] = s2;
	ck_assert_int_eq(check(c, sigs, 3, &parent, &blob), 0);

	/* Too few. */
	sigs[0] = s2;
	ck_assert_int_eq(check(c, sigs, 1, &parent, &blob), CS_EVERIFY);
	ck_assert_msg(strstr(cs_error_last(), "1 root approval, 2 needed") !=
			      NULL,
		      "%s", cs_error_last());
	ck_assert_int_eq(check(c, sigs, 0, &parent, &blob), CS_EVERIFY);
	ck_assert(strstr(cs_error_last(), "0 root approvals, 2 needed") !=
		  NULL);

	/* The same key twice counts once. */
	sigs[0] = s1, sigs[1] = s1;
	ck_assert_int_eq(check(c, sigs, 2, &parent, &blob), CS_EVERIFY);
	ck_assert_msg(strstr(cs_error_last(), "1 root approval, 2 needed") !=
			      NULL,
		      "%s", cs_error_last());

	/* A non-root signer: a coordinator, a key not (yet) in the set. */
	sigs[0] = s1, sigs[1] = coord;
	ck_assert_int_eq(check(c, sigs, 2, &parent, &blob), CS_EVERIFY);
	ck_assert_msg(strstr(cs_error_last(), "signature 2 is not by a root"
					      " key") != NULL,
		      "%s", cs_error_last());
	sigs[0] = s4, sigs[1] = s1;
	ck_assert_int_eq(check(c, sigs, 2, &parent, &blob), CS_EVERIFY);
	ck_assert(strstr(cs_error_last(), "signature 1 is not by a root") !=
		  NULL);

	/* The wrong namespace: a commit signature is no approval. */
	sigs[0] = s1, sigs[1] = gitns;
	ck_assert_int_eq(check(c, sigs, 2, &parent, &blob), CS_EVERIFY);
	ck_assert_msg(strstr(cs_error_last(), CS_PATH_ROOT_APPROVAL
			     ": signature 2") != NULL &&
			      strstr(cs_error_last(), "namespace") != NULL,
		      "%s", cs_error_last());

	/* A signature of another change. */
	sigs[0] = s1, sigs[1] = wrong;
	ck_assert_int_eq(check(c, sigs, 2, &parent, &blob), CS_EVERIFY);
	ck_assert(strstr(cs_error_last(), "signature 2") != NULL);

	/* The document names another parent or members blob. */
	sigs[0] = s1, sigs[1] = s2;
	a = approval(&parent, &blob, sigs, 2);
	ck_assert_int_eq(cs_root_approval_check(c, a, &other, &blob),
			 CS_EVERIFY);
	ck_assert_msg(strstr(cs_error_last(), "approves another change") !=
			      NULL,
		      "%s", cs_error_last());
	ck_assert_int_eq(cs_root_approval_check(c, a, &parent, &other),
			 CS_EVERIFY);
	ck_assert(strstr(cs_error_last(), "approves another change") != NULL);
	json_decref(a);
	/* ... or claims the right ones over signatures of another change. */
	sigs[0] = wrong;
	a = approval(&parent, &blob, sigs, 1);
	json_array_append_new(json_object_get(a, "signatures"),
			      json_string(s1));
	ck_assert_int_eq(cs_root_approval_check(c, a, &parent, &blob),
			 CS_EVERIFY);
	json_decref(a);

	/* Malformed documents. */
	a = json_pack("{s:s, s:[]}", "parent", ph, "signatures");
	ck_assert_int_eq(cs_root_approval_check(c, a, &parent, &blob),
			 CS_EVERIFY);
	ck_assert(strstr(cs_error_last(), "needs") != NULL);
	json_decref(a);
	a = json_pack("{s:s, s:s, s:[i]}", "parent", ph, "members", bh,
		      "signatures", 7);
	ck_assert_int_eq(cs_root_approval_check(c, a, &parent, &blob),
			 CS_EVERIFY);
	ck_assert(strstr(cs_error_last(), "signature 1") != NULL);
	json_decref(a);
	a = json_pack("{s:s, s:s, s:[s]}", "parent", "A1A1", "members", bh,
		      "signatures", s1);
	ck_assert_int_eq(cs_root_approval_check(c, a, &parent, &blob),
			 CS_EVERIFY);
	json_decref(a);

	/* Threshold 1: one signature is enough. */
	cs_consortium_free(c);
	json_object_set_new(json_object_get(m, "root"), "threshold",
			    json_integer(1));
	c = consortium_of(m);
	sigs[0] = s3;
	ck_assert_int_eq(check(c, sigs, 1, &parent, &blob), 0);

	cs_consortium_free(c);
	json_decref(m);
	free(s1);
	free(s2);
	free(s3);
	free(s4);
	free(coord);
	free(gitns);
	free(wrong);
}
END_TEST

/* ---------------------------------------------------------------------- */

static void
expect_invalid(json_t *members, const char *fragment)
{
	cs_consortium *c = (cs_consortium *)1;
	int rc = build(&c, members);

	ck_assert_msg(rc == CS_EINVALID, "accepted, expected \"%s\"",
		      fragment);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(cs_error_last(), fragment) != NULL,
		      "\"%s\" does not say \"%s\"", cs_error_last(), fragment);
	json_decref(members);
}

START_TEST(test_malformed_members)
{
	json_t *m;

	/* A key of an organisation that is not listed. */
	m = base_members();
	json_array_append_new(keys_of(m),
			      key_entry(MS2_NEW, "zz", "member", 0));
	expect_invalid(m, "consortium/members.json: /keys/5/org: organisation"
			  " \"zz\" is not listed");

	/* The same key twice. */
	m = base_members();
	json_array_append_new(keys_of(m), key_entry(MS2, "alcs", "member", 0));
	expect_invalid(m, "is listed twice");
	m = base_members();
	json_array_append_new(root_keys_of(m), json_string(rpub[R1]));
	expect_invalid(m, "is listed twice");

	/* Thresholds. */
	m = base_members();
	json_object_set_new(json_object_get(m, "root"), "threshold",
			    json_integer(0));
	expect_invalid(m, "/root/threshold must be between 1 and the number"
			  " of root keys (3)");
	m = base_members();
	json_object_set_new(json_object_get(m, "root"), "threshold",
			    json_integer(4));
	expect_invalid(m, "/root/threshold must be between 1 and the number"
			  " of root keys (3)");
	m = base_members();
	json_object_set_new(json_object_get(m, "root"), "threshold",
			    json_integer(-1));
	expect_invalid(m, "/root/threshold");
	m = base_members();
	json_object_set_new(json_object_get(m, "root"), "threshold",
			    json_string("2"));
	expect_invalid(m, "/root/threshold");
	m = base_members();
	json_array_clear(root_keys_of(m));
	json_object_set_new(json_object_get(m, "root"), "threshold",
			    json_integer(1));
	expect_invalid(m, "/root/threshold");

	/* Shape. */
	m = base_members();
	json_object_del(m, "root");
	expect_invalid(m, "consortium/members.json: needs");
	m = base_members();
	json_object_set_new(json_array_get(keys_of(m), 1), "role",
			    json_string("admin"));
	expect_invalid(m, "/keys/1/role: \"admin\" is not a role");
	m = base_members();
	json_object_del(json_array_get(keys_of(m), 2), "org");
	expect_invalid(m, "/keys/2 needs");
	m = base_members();
	json_object_set_new(json_array_get(keys_of(m), 2), "key",
			    json_string("ssh-rsa AAAAB3NzaC1yc2E"));
	expect_invalid(m, "consortium/members.json");
	m = base_members();
	json_array_set_new(root_keys_of(m), 0, json_integer(3));
	expect_invalid(m, "/root/keys/0 is not a key");
}
END_TEST

START_TEST(test_malformed_policy_protocol)
{
	json_t *m = base_members(), *policy, *proto;
	cs_consortium *c = (cs_consortium *)1;
	cs_schema_set *set;

	policy = json_pack("{s:{}}", "stewards");
	proto = protocol(1);
	ck_assert_int_eq(cs_schema_set_new(&set), 0);
	ck_assert_int_eq(cs_consortium_from_json(&c, m, policy, proto, set),
			 CS_EINVALID);
	ck_assert_ptr_null(c);
	ck_assert(strstr(cs_error_last(), "consortium/policy.json: needs"
					  " \"write\"") != NULL);
	json_decref(policy);
	json_decref(proto);

	policy = default_policy();
	proto = json_pack("{s:i}", "protocol", 1);
	ck_assert_int_eq(cs_schema_set_new(&set), 0);
	ck_assert_int_eq(cs_consortium_from_json(&c, m, policy, proto, set),
			 CS_EINVALID);
	ck_assert(strstr(cs_error_last(), "consortium/protocol.json: needs") !=
		  NULL);
	json_decref(proto);
	proto = protocol(0);
	ck_assert_int_eq(cs_schema_set_new(&set), 0);
	ck_assert_int_eq(cs_consortium_from_json(&c, m, policy, proto, set),
			 CS_EINVALID);
	json_decref(proto);

	/* A later protocol loads: the verifier decides what to do. */
	proto = protocol(2);
	ck_assert_int_eq(cs_schema_set_new(&set), 0);
	ck_assert_int_eq(cs_consortium_from_json(&c, m, policy, proto, set),
			 0);
	ck_assert_int_eq(cs_consortium_protocol(c), 2);
	cs_consortium_free(c);
	json_decref(proto);

	/* Missing files. */
	ck_assert_int_eq(cs_schema_set_new(&set), 0);
	ck_assert_int_eq(cs_consortium_from_json(&c, m, policy, NULL, set),
			 CS_EINVALID);
	json_decref(policy);
	json_decref(m);
}
END_TEST

static Suite *
consortium_suite(void)
{
	Suite *s = suite_create("consortium");
	TCase *tc = tcase_create("consortium");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_keys);
	tcase_add_test(tc, test_policy_member);
	tcase_add_test(tc, test_policy_coordinator_and_root);
	tcase_add_test(tc, test_power_changed);
	tcase_add_test(tc, test_root_approval);
	tcase_add_test(tc, test_malformed_members);
	tcase_add_test(tc, test_malformed_policy_protocol);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(consortium_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
