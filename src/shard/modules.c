/* The loaded modules (path, build-id, load bias), so that mtreport can
 * symbolize offline.  One table per process, append-only: a module's id is
 * its index and never changes, so shards written at different times agree. */
#include "config.h"

#include "shard.h"

#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"

#define MODULES_MAX 4096

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct mt_module table[MODULES_MAX];
static unsigned count; /* published with release order */

static void build_id(struct dl_phdr_info *info, struct mt_module *m)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_NOTE)
			continue;
		const unsigned char *p = (const void *)(info->dlpi_addr + ph->p_vaddr);
		const unsigned char *e = p + ph->p_memsz;
		while (p + sizeof(ElfW(Nhdr)) <= e) {
			const ElfW(Nhdr) *n = (const void *)p;
			size_t name = (n->n_namesz + 3) & ~3u, desc = (n->n_descsz + 3) & ~3u;
			const unsigned char *d = p + sizeof(*n) + name;
			if (d + desc > e)
				break;
			if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
			    memcmp(p + sizeof(*n), "GNU", 4) == 0 &&
			    n->n_descsz <= sizeof(m->build_id)) {
				memcpy(m->build_id, d, n->n_descsz);
				m->build_id_len = n->n_descsz;
				return;
			}
			p = d + desc;
		}
	}
}

static int add_module(struct dl_phdr_info *info, size_t size, void *arg)
{
	const char *path = info->dlpi_name;
	uintptr_t top = 0;

	(void)size;
	(void)arg;
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_LOAD) {
			uintptr_t e = info->dlpi_phdr[i].p_vaddr + info->dlpi_phdr[i].p_memsz;
			if (e > top)
				top = e;
		}
	if (!path || !*path)
		path = mt_shard_proc.exe; /* the main program */
	for (unsigned i = 0; i < count; i++)
		if (table[i].base == info->dlpi_addr && table[i].size == top &&
		    strcmp(table[i].path, path) == 0)
			return 0;
	if (count == MODULES_MAX)
		return 1;
	struct mt_module *m = &table[count];
	size_t n = strlen(path);
	m->path = mtje_malloc(n + 1);
	if (!m->path)
		return 1;
	memcpy(m->path, path, n + 1);
	m->base = info->dlpi_addr;
	m->size = top;
	m->build_id_len = 0;
	build_id(info, m);
	__atomic_store_n(&count, count + 1, __ATOMIC_RELEASE);
	return 0;
}

void mt_modules_refresh(void)
{
	pthread_mutex_lock(&lock);
	dl_iterate_phdr(add_module, NULL);
	pthread_mutex_unlock(&lock);
}

bool mt_modules_contain(uintptr_t pc)
{
	unsigned n = mt_modules_count();

	for (unsigned i = 0; i < n; i++)
		if (pc - table[i].base < table[i].size)
			return true;
	return false;
}

unsigned mt_modules_count(void)
{
	return __atomic_load_n(&count, __ATOMIC_ACQUIRE);
}

const struct mt_module *mt_modules_get(unsigned id)
{
	return &table[id];
}

void mt_modules_fork_child(void)
{
	/* Entries below count are complete (published after being filled). */
	pthread_mutex_init(&lock, NULL);
}
