/* libFuzzer target for the aggregate file reader (src/report/aggfile.c,
 * mt_aggfile_read): every byte of a .mta file (mtreport merge -o) is
 * hostile.
 *
 * An input is the file itself, or ('F' inputs) chunk payloads framed into
 * an aggregate file (the "MTAGGR" file header, chunk headers with the right
 * CRC-32C) as tests/fuzz/fuzzutil.h describes.
 *
 * The file is read into a fresh aggregate with mt_aggfile_read.  A file
 * that is rejected must say why; one that is accepted must hold an
 * aggregate whose cross references are all in bounds (checked here), and
 * is then merged into another fresh aggregate as mtreport does with its
 * aggregate inputs (ingest.c).  Both are destroyed.  The same function
 * runs without libFuzzer in `make check` (smoke_main.c). */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_NAME "fuzz_agg"
#include "fuzzutil.h"
#include "report/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned touch_str(const char *s)
{
	unsigned sum = 0;

	CHECK(s != NULL);
	while (*s)
		sum += (unsigned char)*s++;
	return sum;
}

/* Every index an accepted aggregate holds is in bounds, every string and
 * array it points to is readable. */
static unsigned check_agg(const struct mt_agg *a)
{
	unsigned sum = 0;

	for (size_t i = 0; i < a->nmodules; i++) {
		const struct mt_module *m = &a->modules[i];
		sum += touch_str(m->ident) + touch_str(m->path);
		CHECK(m->build_id_len == 0 || m->build_id);
		for (uint32_t k = 0; k < m->build_id_len; k++)
			sum += m->build_id[k];
	}
	for (size_t i = 0; i < a->nsites; i++) {
		const struct mt_site *s = &a->sites[i];
		CHECK(s->depth <= MT_SHARD_MAX_FRAMES);
		CHECK(s->trim <= s->depth);
		for (uint32_t k = 0; k < s->depth; k++) {
			CHECK(s->frames[k].module == MT_NO_MODULE ||
			      s->frames[k].module < a->nmodules);
			sum += (unsigned)s->frames[k].offset;
		}
	}
	for (size_t i = 0; i < a->nprocs; i++) {
		const struct mt_proc *p = &a->procs[i];
		sum += touch_str(p->host);
		if (p->exe)
			sum += touch_str(p->exe);
		if (p->version)
			sum += touch_str(p->version);
		for (uint32_t k = 0; k < p->argc; k++)
			sum += touch_str(p->argv[k]);
		if (p->end_reason)
			sum += touch_str(p->end_reason);
		for (size_t k = 0; k < p->nmarks; k++)
			sum += touch_str(p->marks[k].label);
		for (uint32_t k = 0; k < p->nclasses; k++)
			sum += (unsigned)p->classes[k].size;
		for (size_t k = 0; k < p->nshard_ids; k++)
			sum += (unsigned)p->shard_ids[k];
		CHECK(p->tl.k <= 63);
		for (size_t k = 0; k < p->live.cap; k++) {
			const struct mt_live *l = mt_otab_at(&p->live, k);
			if (!l)
				continue;
			CHECK(l->st < a->nst);
			CHECK(l->stc < a->nstc);
			CHECK(l->w > 0 && !isnan(l->w));
		}
		for (size_t k = 0; k < p->pend.cap; k++) {
			const struct mt_pend *f = mt_otab_at(&p->pend, k);
			if (!f)
				continue;
			CHECK(f->thread < a->nthreads);
		}
	}
	for (size_t i = 0; i < a->nthreads; i++) {
		const struct mt_thread *t = &a->threads[i];
		CHECK(t->proc < a->nprocs);
		sum += touch_str(t->name);
		if (t->live) {
			CHECK(t->live->k <= 63);
			sum += (unsigned)t->live->d[MT_SERIES_N - 1];
		}
	}
	for (size_t i = 0; i < a->nst; i++) {
		CHECK(a->st[i].site < a->nsites);
		CHECK(a->st[i].thread < a->nthreads);
	}
	for (size_t i = 0; i < a->nstc; i++)
		CHECK(a->stc[i].st < a->nst);
	for (size_t i = 0; i < a->nxm; i++) {
		CHECK(a->xm[i].from < a->nthreads);
		CHECK(a->xm[i].to < a->nthreads);
	}
	for (size_t i = 0; i < a->nproblems; i++)
		sum += touch_str(a->problems[i].file) + touch_str(a->problems[i].text);
	return sum;
}

static void read_one(const char *path, size_t file_len)
{
	struct mt_agg x, into;
	char err[256], what[256];
	volatile unsigned sink = 0;
	int rc;

	(void)file_len;
	mt_agg_init(&x);
	memset(err, 'x', sizeof(err));
	rc = mt_aggfile_read(&x, path, err, sizeof(err));
	CHECK(memchr(err, '\0', sizeof(err)) != NULL);
	if (rc < 0) {
		CHECK(rc == -EINVAL || rc == -EPROTONOSUPPORT);
		CHECK(err[0] != '\0');
		mt_agg_destroy(&x);
		return;
	}
	CHECK(rc == 0);
	sink += check_agg(&x);
	/* what mtreport does with an aggregate input */
	mt_agg_init(&into);
	CHECK(!mt_agg_overlaps(&into, &x, what, sizeof(what)));
	mt_agg_merge(&into, &x);
	CHECK(into.nsites <= x.nsites && into.nthreads <= x.nthreads);
	sink += check_agg(&into);
	mt_agg_destroy(&x);
	mt_agg_destroy(&into);
	(void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct fuzz_format agg = {
		"fuzz_agg", MT_AGG_MAGIC, MT_AGG_MAJOR, MT_AGG_MINOR
	};
	size_t len;
	const char *path = fuzz_file(&agg, data, size, &len);

	if (path)
		read_one(path, len);
	return 0;
}
