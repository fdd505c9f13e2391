/*
 * cartosync — reading objects straight from a store's pack files (pack.h).
 */
#include <dirent.h>
#include <stdatomic.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <libdeflate.h>

#include "cartosync/error.h"
#include "pack.h"

#define OFS_DELTA 6
#define REF_DELTA 7

/* Larger objects are left to libgit2: a record is at most 256 KiB. */
#define OBJECT_MAX (64u << 20)
/* No history here has chains this long (git's default depth is 50). */
#define CHAIN_MAX 10000
/* Rebuilt objects kept: slots, bytes, and the largest one kept. */
#define CACHE_SLOTS 8192
#define CACHE_BYTES (16u << 20)
#define CACHE_OBJECT_MAX (1u << 20)
/* Alternates followed from the first directory (git allows 5 levels). */
#define ALTERNATES_MAX 8

typedef struct {
	const uint8_t *idx;
	size_t idx_len;
	const uint8_t *pack;
	size_t pack_len;
	uint32_t count;
	const uint8_t *oids;    /* count * 20, sorted */
	const uint8_t *offsets; /* count * 4 */
	const uint8_t *large;   /* 8-byte offsets */
	size_t nlarge;
	char *name;
} pack_file;

typedef struct {
	uint32_t pack;
	uint64_t offset;
	int type;
	char *data;
	size_t len;
} cache_slot;

struct cs_pack_reader {
	pack_file *packs;
	size_t npacks;
	cache_slot *cache;
	size_t cached_bytes;
	struct libdeflate_decompressor *inflater;
	/* A scan of a pack nobody checked yet (cs_pack_scan): the bytes it
	 * may still build (SIZE_MAX: no bound), and when to give up. */
	size_t budget;
	const atomic_int *stop;
};

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static int
damaged(const pack_file *p, const char *what)
{
	return cs_error_set(CS_EINVALID, "pack %s is damaged: %s", p->name,
			    what);
}

/*
 * Account for `n` bytes about to be built.  A pack that was indexed has
 * been built whole once already; one being scanned before that could
 * describe delta chains that build far more than it holds, so a scan has a
 * budget, and stops when asked, between any two objects it builds.
 */
static int
spend(cs_pack_reader *r, size_t n)
{
	if (r->stop && atomic_load(r->stop))
		return cs_error_set(CS_ELIMIT, "the scan was stopped");
	if (r->budget == SIZE_MAX)
		return 0;
	if (n > r->budget)
		return cs_error_set(CS_ELIMIT,
				    "the pack builds far more than it holds");
	r->budget -= n;
	return 0;
}

static void
unmap(pack_file *p)
{
	if (p->idx)
		munmap((void *)p->idx, p->idx_len);
	if (p->pack)
		munmap((void *)p->pack, p->pack_len);
	free(p->name);
}

static const uint8_t *
map_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	void *m;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || st.st_size <= 0) {
		close(fd);
		return NULL;
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return NULL;
	*len = (size_t)st.st_size;
	return m;
}

/*
 * Map one pack and its index and check their frames: the index's fan-out,
 * tables and size, the pack's header and object count.  Returns 0, or 1
 * for a pack to leave to libgit2 (being written, another version).
 */
static int
pack_map(pack_file *p, const char *dir, const char *idx_name)
{
	char path[4096];
	size_t base = strlen(idx_name) - 4, need;
	uint32_t prev = 0;

	memset(p, 0, sizeof(*p));
	if (snprintf(path, sizeof(path), "%s/%s", dir, idx_name) >=
		    (int)sizeof(path) ||
	    (p->idx = map_file(path, &p->idx_len)) == NULL)
		return 1;
	if (snprintf(path, sizeof(path), "%s/%.*s.pack", dir, (int)base,
		     idx_name) >= (int)sizeof(path) ||
	    (p->pack = map_file(path, &p->pack_len)) == NULL ||
	    (p->name = strndup(idx_name, base)) == NULL)
		goto skip;
	if (p->idx_len < 8 + 1024 + 40 || memcmp(p->idx, "\377tOc", 4) != 0 ||
	    be32(p->idx + 4) != 2)
		goto skip;
	for (int i = 0; i < 256; i++) {
		uint32_t n = be32(p->idx + 8 + 4 * i);

		if (n < prev)
			goto skip;
		prev = n;
	}
	p->count = prev;
	need = 8 + 1024 + (size_t)p->count * 28 + 40;
	if (p->idx_len < need || (p->idx_len - need) % 8 != 0)
		goto skip;
	p->oids = p->idx + 8 + 1024;
	p->offsets = p->oids + (size_t)p->count * 24;
	p->large = p->offsets + (size_t)p->count * 4;
	p->nlarge = (p->idx_len - need) / 8;
	if (p->pack_len < 12 + 20 || memcmp(p->pack, "PACK", 4) != 0 ||
	    (be32(p->pack + 4) != 2 && be32(p->pack + 4) != 3) ||
	    be32(p->pack + 8) != p->count)
		goto skip;
	return 0;
skip:
	unmap(p);
	memset(p, 0, sizeof(*p));
	return 1;
}

static int
add_packs(cs_pack_reader *r, const char *objects)
{
	char dir[4096];
	struct dirent *e;
	DIR *d;

	if (snprintf(dir, sizeof(dir), "%s/pack", objects) >= (int)sizeof(dir))
		return 0;
	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		pack_file *grown;

		if (n < 5 || strcmp(e->d_name + n - 4, ".idx") != 0)
			continue;
		grown = realloc(r->packs, (r->npacks + 1) * sizeof(*grown));
		if (grown == NULL) {
			closedir(d);
			return cs_error_set(CS_ERROR, "out of memory");
		}
		r->packs = grown;
		if (pack_map(&r->packs[r->npacks], dir, e->d_name) == 0)
			r->npacks++;
	}
	closedir(d);
	return 0;
}

/* The directories `objects` borrows from, one level (staging stores). */
static int
add_alternates(cs_pack_reader *r, const char *objects)
{
	char path[4096], line[4096];
	FILE *f;
	int error = 0, n = 0;

	if (snprintf(path, sizeof(path), "%s/info/alternates", objects) >=
	    (int)sizeof(path))
		return 0;
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (error == 0 && n < ALTERNATES_MAX && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] != '/')
			continue; /* relative and commented lines: libgit2's */
		error = add_packs(r, line);
		n++;
	}
	fclose(f);
	return error;
}

int
cs_pack_reader_open(cs_pack_reader **out, const char *objects)
{
	cs_pack_reader *r = calloc(1, sizeof(*r));
	int error;

	*out = NULL;
	if (r == NULL ||
	    (r->cache = calloc(CACHE_SLOTS, sizeof(*r->cache))) == NULL ||
	    (r->inflater = libdeflate_alloc_decompressor()) == NULL) {
		cs_pack_reader_free(r);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	r->budget = SIZE_MAX;
	if ((error = add_packs(r, objects)) < 0 ||
	    (error = add_alternates(r, objects)) < 0) {
		cs_pack_reader_free(r);
		return error;
	}
	*out = r;
	return 0;
}

void
cs_pack_reader_free(cs_pack_reader *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->npacks; i++)
		unmap(&r->packs[i]);
	free(r->packs);
	for (size_t i = 0; r->cache && i < CACHE_SLOTS; i++)
		free(r->cache[i].data);
	free(r->cache);
	if (r->inflater)
		libdeflate_free_decompressor(r->inflater);
	free(r);
}

/* Where object `id` starts in pack `p`, or 0 when it is not there. */
static uint64_t
pack_find(const pack_file *p, const cs_oid *id)
{
	uint32_t lo = id->id[0] ? be32(p->idx + 8 + 4 * (id->id[0] - 1)) : 0;
	uint32_t hi = be32(p->idx + 8 + 4 * id->id[0]);

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = memcmp(p->oids + (size_t)mid * 20, id->id, 20);

		if (c == 0) {
			uint32_t off = be32(p->offsets + (size_t)mid * 4);
			uint64_t at;

			if (!(off & 0x80000000u))
				return off;
			off &= 0x7fffffffu;
			if (off >= p->nlarge)
				return 0;
			at = (uint64_t)be32(p->large + (size_t)off * 8) << 32 |
			     be32(p->large + (size_t)off * 8 + 4);
			return at;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int
find(const cs_pack_reader *r, const cs_oid *id, uint32_t *pack,
     uint64_t *offset)
{
	for (size_t i = 0; i < r->npacks; i++)
		if ((*offset = pack_find(&r->packs[i], id)) != 0) {
			*pack = (uint32_t)i;
			return 0;
		}
	return CS_ENOTFOUND;
}

/* An entry's header: its type, its (inflated) size and where its data
 * starts; for a delta, where its base is (in the same pack). */
typedef struct {
	int type;
	size_t size;
	size_t data;
	uint64_t base;
} entry;

static int
entry_parse(cs_pack_reader *r, uint32_t pack, uint64_t offset, entry *e)
{
	const pack_file *p = &r->packs[pack];
	size_t end = p->pack_len - 20, at = (size_t)offset;
	uint64_t size;
	unsigned shift = 4;
	uint8_t c;

	if (offset < 12 || offset >= end)
		return damaged(p, "an object's offset is outside the pack");
	c = p->pack[at++];
	e->type = (c >> 4) & 7;
	size = c & 15;
	while (c & 0x80) {
		if (at >= end || shift > 57)
			return damaged(p, "an object's header is cut");
		c = p->pack[at++];
		size |= (uint64_t)(c & 0x7f) << shift;
		shift += 7;
	}
	if (size > OBJECT_MAX)
		return CS_ENOTFOUND; /* libgit2 reads it */
	e->size = (size_t)size;
	if (e->type == OFS_DELTA) {
		uint64_t back;

		if (at >= end)
			return damaged(p, "a delta's base is cut");
		c = p->pack[at++];
		back = c & 0x7f;
		while (c & 0x80) {
			if (at >= end || back > (UINT64_MAX >> 8))
				return damaged(p, "a delta's base is cut");
			c = p->pack[at++];
			back = ((back + 1) << 7) | (c & 0x7f);
		}
		if (back == 0 || back > offset)
			return damaged(p, "a delta's base is outside the pack");
		e->base = offset - back;
	} else if (e->type == REF_DELTA) {
		cs_oid base;

		if (end - at < 20)
			return damaged(p, "a delta's base is cut");
		memcpy(base.id, p->pack + at, 20);
		at += 20;
		/* Thin packs are completed by the indexer: the base is here
		 * (a pack scanned without its index: not looked for). */
		if (p->idx == NULL)
			e->base = 0;
		else if ((e->base = pack_find(p, &base)) == 0)
			return CS_ENOTFOUND;
	} else if (e->type < CS_PACK_COMMIT || e->type > CS_PACK_TAG) {
		return damaged(p, "an object has an unknown type");
	}
	e->data = at;
	return 0;
}

/*
 * Inflate the entry's data: exactly `size` bytes (libdeflate, whole
 * buffers: several times zlib's speed on objects this small; it checks the
 * stream's Adler-32 as zlib does).
 */
static int
inflate_used(cs_pack_reader *r, uint32_t pack, const entry *e, char *out,
	     size_t size, size_t *in_used)
{
	const pack_file *p = &r->packs[pack];
	size_t out_len = 0;
	enum libdeflate_result rc;

	rc = libdeflate_zlib_decompress_ex(r->inflater, p->pack + e->data,
					   p->pack_len - 20 - e->data, out,
					   size, in_used, &out_len);
	if (rc != LIBDEFLATE_SUCCESS || out_len != size)
		return damaged(p, "an object's data does not inflate to its"
				  " size");
	return 0;
}

static int
inflate_at(cs_pack_reader *r, uint32_t pack, const entry *e, char *out,
	   size_t size)
{
	size_t in_used;

	return inflate_used(r, pack, e, out, size, &in_used);
}

/* A delta's size field (little-endian groups of 7 bits). */
static int
delta_size(const uint8_t **p, const uint8_t *end, size_t *out)
{
	uint64_t v = 0;
	unsigned shift = 0;
	uint8_t c;

	do {
		if (*p >= end || shift > 63)
			return -1;
		c = *(*p)++;
		v |= (uint64_t)(c & 0x7f) << shift;
		shift += 7;
	} while (c & 0x80);
	if (v > OBJECT_MAX)
		return -1;
	*out = (size_t)v;
	return 0;
}

/* `delta` applied to `base`: a new malloc'd object. */
static int
delta_apply(const pack_file *p, const char *base, size_t base_len,
	    const uint8_t *delta, size_t delta_len, size_t max, char **out,
	    size_t *len)
{
	const uint8_t *d = delta, *end = delta + delta_len;
	size_t want_base, size, at = 0;
	char *res;

	if (delta_size(&d, end, &want_base) < 0 ||
	    delta_size(&d, end, &size) < 0 || want_base != base_len)
		return damaged(p, "a delta does not fit its base");
	if (size > max) {
		*len = size;
		return CS_ELIMIT;
	}
	if ((res = malloc(size + 1)) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	while (d < end) {
		uint8_t op = *d++;

		if (op & 0x80) {
			size_t off = 0, n = 0;

			for (int i = 0; i < 4; i++)
				if (op & (1u << i)) {
					if (d >= end)
						goto bad;
					off |= (size_t)*d++ << (8 * i);
				}
			for (int i = 0; i < 3; i++)
				if (op & (0x10u << i)) {
					if (d >= end)
						goto bad;
					n |= (size_t)*d++ << (8 * i);
				}
			if (n == 0)
				n = 0x10000;
			if (off > base_len || n > base_len - off ||
			    n > size - at)
				goto bad;
			memcpy(res + at, base + off, n);
			at += n;
		} else if (op) {
			if (op > (size_t)(end - d) || op > size - at)
				goto bad;
			memcpy(res + at, d, op);
			d += op;
			at += op;
		} else {
			goto bad;
		}
	}
	if (at != size)
		goto bad;
	res[size] = '\0';
	*out = res;
	*len = size;
	return 0;
bad:
	free(res);
	return damaged(p, "a delta's instructions do not fit");
}

static cache_slot *
cache_slot_for(cs_pack_reader *r, uint32_t pack, uint64_t offset)
{
	uint64_t h = (offset ^ ((uint64_t)pack << 40)) * 0x9e3779b97f4a7c15ull;

	return &r->cache[(h >> 32) % CACHE_SLOTS];
}

static const cache_slot *
cache_get(cs_pack_reader *r, uint32_t pack, uint64_t offset)
{
	cache_slot *s = cache_slot_for(r, pack, offset);

	return s->data && s->pack == pack && s->offset == offset ? s : NULL;
}

/* Keep `data` (taken) if it fits; returns whether it was kept. */
static int
cache_put(cs_pack_reader *r, uint32_t pack, uint64_t offset, int type,
	  char *data, size_t len)
{
	cache_slot *s = cache_slot_for(r, pack, offset);

	if (len > CACHE_OBJECT_MAX)
		return 0;
	if (s->data) {
		r->cached_bytes -= s->len;
		free(s->data);
		s->data = NULL;
	}
	if (r->cached_bytes + len > CACHE_BYTES)
		return 0;
	*s = (cache_slot){pack, offset, type, data, len};
	r->cached_bytes += len;
	return 1;
}

/*
 * The object at `offset`: its type and contents, which are either owned by
 * the caller (*owned) or borrowed from the cache until the next call.
 */
static int
object_at(cs_pack_reader *r, uint32_t pack, uint64_t offset, size_t max,
	  int *type, const char **data, size_t *len, int *owned)
{
	const pack_file *p = &r->packs[pack];
	uint64_t chain[64], *deltas = chain;
	size_t n = 0, cap = 64;
	const cache_slot *hit;
	char *base = NULL, *buf = NULL;
	size_t base_len = 0;
	int base_type = 0, base_owned = 0, error = 0;
	entry e;

	/* Down the chain to a full object or one in the cache. */
	for (uint64_t at = offset;;) {
		if ((hit = cache_get(r, pack, at)) != NULL) {
			if (at == offset && hit->len > max) {
				*len = hit->len;
				error = CS_ELIMIT;
				goto done;
			}
			base = hit->data;
			base_len = hit->len;
			base_type = hit->type;
			break;
		}
		if ((error = entry_parse(r, pack, at, &e)) < 0)
			goto done;
		if (e.type != OFS_DELTA && e.type != REF_DELTA) {
			if (at == offset && e.size > max) {
				*len = e.size;
				error = CS_ELIMIT;
				goto done;
			}
			if ((error = spend(r, e.size)) < 0)
				goto done;
			if ((base = malloc(e.size + 1)) == NULL) {
				error = cs_error_set(CS_ERROR, "out of memory");
				goto done;
			}
			base_owned = 1;
			if ((error = inflate_at(r, pack, &e, base, e.size)) <
			    0)
				goto done;
			base[e.size] = '\0';
			base_len = e.size;
			base_type = e.type;
			if (at != offset &&
			    cache_put(r, pack, at, base_type, base, base_len))
				base_owned = 0;
			break;
		}
		if (n == CHAIN_MAX) {
			error = damaged(p, "a delta chain is too long");
			goto done;
		}
		if (n == cap) {
			uint64_t *grown =
				malloc(cap * 2 * sizeof(*grown));

			if (grown == NULL) {
				error = cs_error_set(CS_ERROR, "out of memory");
				goto done;
			}
			memcpy(grown, deltas, n * sizeof(*grown));
			if (deltas != chain)
				free(deltas);
			deltas = grown;
			cap *= 2;
		}
		deltas[n++] = at;
		at = e.base;
	}
	/* Up again, applying each delta to what the one below gave. */
	while (n > 0) {
		uint64_t at = deltas[--n];
		char *res = NULL;
		size_t res_len = 0;

		if ((error = entry_parse(r, pack, at, &e)) < 0 ||
		    (error = spend(r, e.size)) < 0)
			goto done;
		if ((buf = malloc(e.size + 1)) == NULL) {
			error = cs_error_set(CS_ERROR, "out of memory");
			goto done;
		}
		if ((error = inflate_at(r, pack, &e, buf, e.size)) < 0 ||
		    (error = delta_apply(p, base, base_len, (uint8_t *)buf,
					 e.size, n == 0 ? max : SIZE_MAX, &res,
					 &res_len)) < 0) {
			if (error == CS_ELIMIT)
				*len = res_len;
			goto done;
		}
		free(buf);
		buf = NULL;
		if (base_owned)
			free(base);
		base = res;
		base_len = res_len;
		base_owned = 1;
		if ((error = spend(r, res_len)) < 0)
			goto done;
		/* The object asked for is kept if it is a tree: files
		 * are read once, trees again by the next commit's diff. */
		if ((at != offset || base_type == CS_PACK_TREE) &&
		    cache_put(r, pack, at, base_type, base, base_len))
			base_owned = 0;
	}
	*type = base_type;
	*data = base;
	*len = base_len;
	*owned = base_owned;
	base_owned = 0;
done:
	if (base_owned)
		free(base);
	free(buf);
	if (deltas != chain)
		free(deltas);
	return error;
}


int
cs_pack_read(cs_pack_reader *r, const cs_oid *id, size_t max, int *type,
	     char **data, size_t *len)
{
	const char *obj;
	uint32_t pack;
	uint64_t offset;
	int owned, error;

	*data = NULL;
	if (find(r, id, &pack, &offset) < 0)
		return CS_ENOTFOUND;
	if ((error = object_at(r, pack, offset, max, type, &obj, len,
			       &owned)) < 0) {
		if (error == CS_ELIMIT)
			cs_error_set(CS_ELIMIT,
				     "object is %zu bytes, over the limit of"
				     " %zu",
				     *len, max);
		return error;
	}
	if (owned) {
		*data = (char *)obj;
		return 0;
	}
	if ((*data = malloc(*len + 1)) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	memcpy(*data, obj, *len);
	(*data)[*len] = '\0';
	return 0;
}

/* The type of the object at `at`: its chain's base's (no inflating). */
static int
chain_type(cs_pack_reader *r, uint64_t at, const entry *first)
{
	entry e = *first;

	for (size_t n = 0; e.type == OFS_DELTA || e.type == REF_DELTA; n++) {
		const cache_slot *hit;

		if (n == CHAIN_MAX || e.base == 0)
			return 0;
		at = e.base;
		if ((hit = cache_get(r, 0, at)) != NULL)
			return hit->type;
		if (entry_parse(r, 0, at, &e) < 0)
			return 0;
	}
	return e.type;
}

int
cs_pack_scan(const char *path, int type, cs_pack_scan_cb cb, void *arg,
	     const atomic_int *stop)
{
	cs_pack_reader r = {0};
	pack_file p = {0};
	uint64_t at = 12;
	uint32_t count;
	char *buf = NULL;
	size_t cap = 0;
	int error = 0;

	if ((p.pack = map_file(path, &p.pack_len)) == NULL)
		return cs_error_set(CS_ERROR, "cannot map %s", path);
	if ((p.name = strdup(path)) == NULL ||
	    (r.cache = calloc(CACHE_SLOTS, sizeof(*r.cache))) == NULL ||
	    (r.inflater = libdeflate_alloc_decompressor()) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	r.packs = &p;
	r.npacks = 1;
	/* Packs of records build a few times their size. */
	r.budget = p.pack_len > (SIZE_MAX - OBJECT_MAX) / 32
			   ? SIZE_MAX - 1
			   : 32 * p.pack_len + OBJECT_MAX;
	r.stop = stop;
	if (p.pack_len < 12 + 20 || memcmp(p.pack, "PACK", 4) != 0) {
		error = damaged(&p, "no pack header");
		goto done;
	}
	count = be32(p.pack + 8);
	for (uint32_t i = 0; i < count && !atomic_load(stop); i++) {
		entry e;
		size_t used = 0;
		int whole;

		if ((error = entry_parse(&r, 0, at, &e)) < 0 ||
		    (error = spend(&r, e.size)) < 0)
			goto done;
		whole = e.type != OFS_DELTA && e.type != REF_DELTA;
		if (e.size + 1 > cap) {
			char *grown = realloc(buf, e.size + 1);

			if (grown == NULL) {
				error = cs_error_set(CS_ERROR, "out of memory");
				goto done;
			}
			buf = grown;
			cap = e.size + 1;
		}
		/* A delta is inflated too: its end is where the next starts. */
		if ((error = inflate_used(&r, 0, &e, buf, e.size, &used)) < 0)
			goto done;
		buf[e.size] = '\0';
		if (whole && e.type == type) {
			if ((error = cb(buf, e.size, arg)) != 0)
				goto done;
		} else if (!whole && chain_type(&r, at, &e) == type) {
			const char *obj;
			size_t len;
			int t, owned;

			/* Rebuilt through the reader's cache; a chain it
			 * cannot follow (a reference delta) is skipped. */
			error = object_at(&r, 0, at, SIZE_MAX, &t, &obj, &len,
					  &owned);
			if (error == CS_ELIMIT)
				goto done; /* stopped, or over the budget */
			if (error == 0) {
				error = cb(obj, len, arg);
				if (owned)
					free((char *)obj);
				if (error)
					goto done;
			}
			error = 0;
		}
		at = e.data + used;
	}
done:
	free(buf);
	for (size_t i = 0; r.cache && i < CACHE_SLOTS; i++)
		free(r.cache[i].data);
	free(r.cache);
	if (r.inflater)
		libdeflate_free_decompressor(r.inflater);
	unmap(&p);
	return error;
}
