/* inputs: the PATH arguments expanded into a list of files. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report/report.h"

#define MAX_DEPTH 32 /* directory levels searched */

struct seen {
	struct mt_map idx;  /* hash(dev, ino) chain -> entry */
	dev_t *dev;
	ino_t *ino;
	size_t n, cap;
};

static bool seen_add(struct seen *s, dev_t dev, ino_t ino)
{
	uint64_t k = mt_mix64((uint64_t)dev * 0x9e3779b97f4a7c15ull ^ (uint64_t)ino);
	uint32_t i;

	while ((i = mt_map_get(&s->idx, k)) != UINT32_MAX) {
		if (s->dev[i] == dev && s->ino[i] == ino)
			return false;
		k = mt_mix64(k + 1);
	}
	if (s->n == s->cap) {
		size_t cap = s->cap;
		mt_grow(&s->dev, &cap, s->n + 1, sizeof(dev_t));
		mt_grow(&s->ino, &s->cap, s->n + 1, sizeof(ino_t));
	}
	s->dev[s->n] = dev;
	s->ino[s->n] = ino;
	mt_map_put(&s->idx, k, (uint32_t)s->n++);
	return true;
}

static enum mt_input_kind kind_of(const char *path)
{
	char magic[8];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return MT_IN_SHARD; /* the reader says why */
	n = read(fd, magic, sizeof(magic));
	close(fd);
	if (n == (ssize_t)sizeof(magic) && !memcmp(magic, MT_AGG_MAGIC, 8))
		return MT_IN_AGG;
	return MT_IN_SHARD;
}

static void add(struct mt_inputs *in, struct seen *s, const char *path,
		const struct stat *st)
{
	if (!seen_add(s, st->st_dev, st->st_ino))
		return;
	mt_grow(&in->v, &in->cap, in->n + 1, sizeof(*in->v));
	struct mt_input *e = &in->v[in->n];
	e->path = mt_xstrndup(path, strlen(path));
	e->kind = kind_of(path);
	e->size = (uint64_t)st->st_size;
	e->order = (unsigned)in->n;
	in->n++;
	in->bytes += e->size;
}

static bool wanted(const char *name)
{
	size_t n = strlen(name);
	return n > 4 && (!strcmp(name + n - 4, MT_SHARD_SUFFIX) ||
			 !strcmp(name + n - 4, MT_AGG_SUFFIX));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void walk(struct mt_inputs *in, struct seen *s, const char *dir,
		 int depth, struct mt_ingest_ctx *ctx)
{
	DIR *d = opendir(dir);
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;

	if (!d) {
		mt_ingest_problem(ctx, dir, "cannot read the directory: %s",
				  strerror(errno));
		return;
	}
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		mt_grow(&names, &cap, n + 1, sizeof(*names));
		names[n++] = mt_xstrndup(e->d_name, strlen(e->d_name));
	}
	closedir(d);
	mt_sort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(dir) + strlen(names[i]) + 2;
		char *p = mt_xmalloc(len);
		struct stat st;
		snprintf(p, len, "%s%s%s", dir,
			 dir[strlen(dir) - 1] == '/' ? "" : "/", names[i]);
		if (lstat(p, &st) == 0) {
			if (S_ISDIR(st.st_mode)) {
				if (depth < MAX_DEPTH)
					walk(in, s, p, depth + 1, ctx);
			} else if (wanted(names[i]) &&
				   (S_ISREG(st.st_mode) ||
				    (S_ISLNK(st.st_mode) && stat(p, &st) == 0 &&
				     S_ISREG(st.st_mode)))) {
				add(in, s, p, &st);
			}
		}
		free(p);
		free(names[i]);
	}
	free(names);
}

void mt_inputs_collect(struct mt_inputs *in, char *const *paths, int n,
		       struct mt_ingest_ctx *ctx)
{
	struct seen s;

	memset(in, 0, sizeof(*in));
	memset(&s, 0, sizeof(s));
	for (int i = 0; i < n; i++) {
		struct stat st;
		if (stat(paths[i], &st) != 0) {
			mt_ingest_problem(ctx, paths[i], "%s", strerror(errno));
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			size_t before = in->n;
			walk(in, &s, paths[i], 0, ctx);
			if (in->n == before)
				mt_ingest_problem(ctx, paths[i],
						  "no shard (.mts) or aggregate (.mta) in it");
		} else
			add(in, &s, paths[i], &st);
	}
	mt_map_free(&s.idx);
	free(s.dev);
	free(s.ino);
}

void mt_inputs_free(struct mt_inputs *in)
{
	for (size_t i = 0; i < in->n; i++)
		free(in->v[i].path);
	free(in->v);
	memset(in, 0, sizeof(*in));
}
