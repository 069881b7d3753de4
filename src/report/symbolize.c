/* symbolize: (module, offset) -> function, inlined frames, file:line, with
 * elfutils' libdwfl, offline.  See symbolize.h for the contract.
 *
 * Each module (a distinct path and build-id as the shards record it) gets a
 * Dwfl session of its own, loaded on its first lookup: its ELF file is
 * reported at load bias 0 (dwfl_report_elf), so that a recorded offset, which
 * is an address relative to the load bias, is an address in the session.
 * Files are found in this order, every candidate checked against the
 * recorded build-id when there is one (a rebuilt binary gives no frame, not
 * wrong names):
 *
 *   1. the binary by build-id: DIR/.build-id/xx/yyyy, DIR/<hex>/executable
 *   2. the recorded path, if absolute
 *   3. the debug file alone by build-id: DIR/.build-id/xx/yyyy.debug,
 *      DIR/<hex>/debuginfo (it has the symbol table and DWARF)
 *
 * and when the file found has no DWARF of its own, its separate debug file
 * (our find_debuginfo callback): by build-id as in 3, then by .gnu_debuglink
 * (next to the binary, in .debug/ beside it, DIR/<binary's directory>/),
 * then dwz's .gnu_debugaltlink file the DWARF refers to.  DIR runs over the
 * caller's debug_path, /usr/lib/debug and the debuginfod client's cache.
 *
 * The symbolizer never asks a debuginfod server: libdwfl's standard callback
 * would whenever DEBUGINFOD_URLS is set (Debian's libdebuginfod-common can
 * set it in every login shell), and a report must not stall on the network.
 * `debuginfod-find debuginfo ID` fills the cache it reads.
 *
 * Results are cached per (module, offset) in an open-addressing table, so a
 * lookup of a known address is one hash probe and a copy; strings are
 * interned, stored once, and live until mt_sym_free.  At most
 * MT_SYM_OPEN_MAX sessions stay open (least recently used closed first);
 * names from the ELF symbol table come from a sorted copy of it. */
#include "config.h"

#include "report/symbolize.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FRAMES_MAX 64           /* frames kept per address (inline depth) */
#define STR_BLOCK (64u << 10)   /* bytes per string arena block */
#define RECENT 16               /* modules remembered by key address */
/* Sessions open at once.  libdwfl keeps each module's files open (and
 * mapped, with its parsed DWARF): past this many, the least recently used
 * is closed, to be reopened if a new address needs it.  128 modules hold at
 * most 384 descriptors (binary, debug file, dwz file), well under the
 * usual limit of 1024. */
#ifndef MT_SYM_OPEN_MAX
#define MT_SYM_OPEN_MAX 128
#endif

/* libstdc++'s demangler (mtreport links libstdc++; see sym.am). */
extern char *__cxa_demangle(const char *mangled, char *buf, size_t *len,
			    int *status);

/* An interned string; `alt` is the demangled form of a mangled name, filled
 * on first use (NULL: not tried yet). */
struct sym_str {
	uint64_t hash;
	const char *str;
	const char *alt;
};

struct sym_module {
	char *path;              /* as recorded ("" when none) */
	uint8_t *build_id;       /* as recorded; NULL when unknown */
	uint32_t build_id_len;   /* bytes */
	uint64_t hash;
	uint32_t id;             /* 1-based index, the address table's key */
	bool tried;              /* a load was attempted */
	bool found;              /* the last load found an ELF file */
	uint64_t used;           /* tick of the last miss it served */
	Dwfl *dwfl;              /* open session, or NULL */
	Dwfl_Module *mod;
	Dwarf_Addr bias;         /* session address = bias + offset */
	Dwarf_Addr start, end;   /* session addresses of the module */
	char *main_file;         /* the file reported */
	char *debug_file;        /* the separate debug file we returned */
	bool alt_next;           /* the next find_debuginfo call is for dwz's alt file */
	struct cu_index *cus;    /* open addressing by CU, NULL key: empty */
	size_t cus_mask, cus_used;
	bool syms_loaded;        /* the sorted symbol table below was built */
	struct elf_sym *syms;    /* functions by address, for names without DWARF */
	size_t nsyms;
	struct mt_symbolizer *sym;
};

/* The code of one CU: the address ranges of its outermost code DIEs
 * (subprograms, also inside namespaces and imported units), sorted, so that
 * a lookup bisects instead of walking the CU's top level. */
struct cu_range {
	Dwarf_Addr lo, hi;       /* DWARF addresses, [lo, hi) */
	size_t order;            /* of the DIE in the CU */
	Dwarf_Die die;
};
struct cu_index {
	const void *key;         /* the CU DIE's address in the file's data */
	struct cu_range *ranges; /* sorted by lo */
	size_t n;
};

/* A function in the ELF symbol table.  libdwfl's dwfl_module_addrinfo scans
 * every symbol for each address; this is searched by bisection. */
struct elf_sym {
	Dwarf_Addr addr, size;   /* session address; bytes */
	const char *name;        /* in the file's string table */
	int rank;                /* at one address, the higher wins */
	bool sizeless;           /* st_size 0: size is up to the section end */
};

struct addr_slot {
	uint64_t offset;
	uint32_t module;         /* sym_module.id; 0: empty slot */
	uint32_t n;              /* frames */
	uint64_t first;          /* index in mt_symbolizer.frames */
};

struct str_block {
	struct str_block *next;
	size_t used, size;       /* bytes */
	char data[];
};

struct mt_symbolizer {
	char **dirs;             /* search directories, in order */
	size_t ndirs;

	struct sym_module **mods; /* by id - 1 */
	uint32_t nmods, mods_cap;
	uint32_t *mod_index;     /* open addressing: id, 0 empty */
	uint32_t mod_index_mask;
	/* Modules by the address of the caller's path string, checked against
	 * the contents: a stack's frames alternate between a few modules, and
	 * this spares hashing the path for each. */
	struct recent {
		const char *path;
		struct sym_module *m;
	} recent[RECENT];

	struct addr_slot *slots;
	uint64_t slots_mask, slots_used;

	uint32_t nopen;          /* modules with a session */
	uint64_t tick;           /* misses served */

	struct mt_sym_frame *frames;
	uint64_t nframes, frames_cap;

	struct sym_str *strs;    /* open addressing, str NULL: empty */
	uint64_t strs_mask, strs_used;
	struct str_block *blocks;
};

/* ---- hashing ------------------------------------------------------------- */

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 0x100000001b3ull; /* FNV-1a */
	return h;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* ---- interned strings ------------------------------------------------------ */

static char *arena_copy(struct mt_symbolizer *s, const char *str, size_t n)
{
	struct str_block *b = s->blocks;

	if (!b || b->size - b->used < n + 1) {
		size_t size = n + 1 > STR_BLOCK ? n + 1 : STR_BLOCK;
		b = malloc(sizeof(*b) + size);
		if (!b)
			return NULL;
		b->size = size;
		b->used = 0;
		b->next = s->blocks;
		s->blocks = b;
	}
	char *p = b->data + b->used;
	memcpy(p, str, n);
	p[n] = '\0';
	b->used += n + 1;
	return p;
}

static int strs_grow(struct mt_symbolizer *s)
{
	uint64_t cap = s->strs ? (s->strs_mask + 1) * 2 : 1024;
	struct sym_str *t = calloc(cap, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (uint64_t i = 0; s->strs && i <= s->strs_mask; i++) {
		if (!s->strs[i].str)
			continue;
		uint64_t j = s->strs[i].hash & (cap - 1);
		while (t[j].str)
			j = (j + 1) & (cap - 1);
		t[j] = s->strs[i];
	}
	free(s->strs);
	s->strs = t;
	s->strs_mask = cap - 1;
	return 0;
}

/* The interned entry for `str` (NULL for NULL or on ENOMEM). */
static struct sym_str *intern(struct mt_symbolizer *s, const char *str)
{
	if (!str)
		return NULL;
	size_t n = strlen(str);
	uint64_t h = hash_bytes(0xcbf29ce484222325ull, str, n);

	if ((s->strs_used + 1) * 4 > (s->strs ? s->strs_mask + 1 : 0) * 3 &&
	    strs_grow(s))
		return NULL;
	uint64_t i = h & s->strs_mask;
	while (s->strs[i].str) {
		if (s->strs[i].hash == h && strcmp(s->strs[i].str, str) == 0)
			return &s->strs[i];
		i = (i + 1) & s->strs_mask;
	}
	const char *copy = arena_copy(s, str, n);
	if (!copy)
		return NULL;
	s->strs[i] = (struct sym_str){ .hash = h, .str = copy };
	s->strs_used++;
	return &s->strs[i];
}

static const char *intern_str(struct mt_symbolizer *s, const char *str)
{
	struct sym_str *e = intern(s, str);

	return e ? e->str : NULL;
}

/* A function name as people read it: C++ (Itanium ABI) names demangled. */
static const char *intern_name(struct mt_symbolizer *s, const char *name)
{
	struct sym_str *e = intern(s, name);

	if (!e)
		return NULL;
	if (strncmp(e->str, "_Z", 2) != 0)
		return e->str;
	if (!e->alt) {
		const char *str = e->str;
		int status = -1;
		char *d = __cxa_demangle(str, NULL, NULL, &status);
		/* intern() may grow the table and move *e. */
		const char *alt = status == 0 && d ? intern_str(s, d) : NULL;
		free(d);
		e = intern(s, str);
		if (!e)
			return NULL;
		e->alt = alt ? alt : e->str;
	}
	return e->alt;
}

/* ---- search directories ---------------------------------------------------- */

static int add_dir(struct mt_symbolizer *s, const char *dir, size_t n)
{
	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (n == 0)
		return 0;
	for (size_t i = 0; i < s->ndirs; i++)
		if (strlen(s->dirs[i]) == n && memcmp(s->dirs[i], dir, n) == 0)
			return 0;
	char **d = realloc(s->dirs, (s->ndirs + 1) * sizeof(*d));
	if (!d)
		return -ENOMEM;
	s->dirs = d;
	d[s->ndirs] = strndup(dir, n);
	if (!d[s->ndirs])
		return -ENOMEM;
	s->ndirs++;
	return 0;
}

static int add_dir_str(struct mt_symbolizer *s, const char *a, const char *b)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s%s", a, b);

	if (n <= 0 || (size_t)n >= sizeof(path))
		return 0;
	return add_dir(s, path, (size_t)n);
}

/* The caller's directories, then the system's debug directory, then the
 * debuginfod client's cache (as elfutils' client places it). */
static int make_dirs(struct mt_symbolizer *s, const char *debug_path)
{
	const char *p = debug_path, *e;
	int err;

	while (p && *p) {
		e = strchr(p, ':');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if ((err = add_dir(s, p, n)))
			return err;
		p = e ? e + 1 : NULL;
	}
	if ((err = add_dir_str(s, "/usr/lib/debug", "")))
		return err;

	const char *v = getenv("DEBUGINFOD_CACHE_PATH");
	const char *home = getenv("HOME");
	if (v && *v)
		return add_dir_str(s, v, "");
	if (home && *home) {
		char legacy[PATH_MAX];
		struct stat st;
		int n = snprintf(legacy, sizeof(legacy), "%s/.debuginfod_client_cache", home);
		if (n > 0 && (size_t)n < sizeof(legacy) && stat(legacy, &st) == 0 &&
		    S_ISDIR(st.st_mode))
			return add_dir_str(s, legacy, "");
	}
	v = getenv("XDG_CACHE_HOME");
	if (v && *v)
		return add_dir_str(s, v, "/debuginfod_client");
	if (home && *home)
		return add_dir_str(s, home, "/.cache/debuginfod_client");
	return 0;
}

/* ---- opening and checking ELF files ------------------------------------------ */

/* What open_elf learnt about a file. */
struct elf_facts {
	bool has_altlink;        /* a .gnu_debugaltlink section (dwz) */
};

/* What a file must be: a module's binary or debug file is an executable or
 * a shared object; dwz's common file is a relocatable one. */
enum elf_want { WANT_MODULE, WANT_DWZ };

static bool same_id(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && alen > 0 && memcmp(a, b, alen) == 0;
}

static bool has_section(Elf *elf, const char *name)
{
	size_t shstrndx;
	Elf_Scn *scn = NULL;

	if (elf_getshdrstrndx(elf, &shstrndx) != 0)
		return false;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr mem, *sh = gelf_getshdr(scn, &mem);
		const char *n = sh ? elf_strptr(elf, shstrndx, sh->sh_name) : NULL;
		if (n && strcmp(n, name) == 0)
			return true;
	}
	return false;
}

/* Opens `path` if it is a regular, non-empty ELF file of the kind wanted
 * whose build-id is `id` (any, when id_len is 0: then a file with no build-id
 * is accepted too).  Returns the descriptor, or -1.  O_NONBLOCK: a FIFO
 * must not hang the report (it is rejected after fstat). */
static int open_elf(const char *path, enum elf_want want, const void *id,
		    size_t id_len, struct elf_facts *facts)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(Elf32_Ehdr))
		goto out_close;
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf)
		goto out_close;
	GElf_Ehdr mem, *eh = gelf_getehdr(elf, &mem);
	bool ok = elf_kind(elf) == ELF_K_ELF && eh &&
		  (want == WANT_DWZ ? eh->e_type == ET_REL :
		   eh->e_type == ET_EXEC || eh->e_type == ET_DYN);
	if (ok && id_len) {
		const void *fid = NULL;
		ssize_t n = dwelf_elf_gnu_build_id(elf, &fid);
		ok = n > 0 && same_id(fid, (size_t)n, id, id_len);
	}
	if (ok && facts)
		facts->has_altlink = has_section(elf, ".gnu_debugaltlink");
	elf_end(elf);
	if (ok)
		return fd;
out_close:
	close(fd);
	return -1;
}

/* The CRC-32 that .gnu_debuglink carries (zlib's), of a whole file. */
static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

static bool file_crc_is(int fd, uint32_t want)
{
	unsigned char buf[64 << 10];
	uint32_t c = 0xffffffffu;
	off_t off = 0;
	ssize_t n;

	pthread_once(&crc_once, crc_init);
	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			c = crc_table[(c ^ buf[i]) & 0xff] ^ (c >> 8);
		off += n;
	}
	return n == 0 && (c ^ 0xffffffffu) == want;
}

/* Tries DIR/.build-id/xx/yyyy<suffix> and DIR/<hex>/<cache_name> in every
 * directory.  Returns a descriptor and sets *found (malloc'd), or -1. */
static int find_by_id(struct mt_symbolizer *s, enum elf_want want,
		      const uint8_t *id, size_t len,
		      const char *suffix, const char *cache_name,
		      struct elf_facts *facts, char **found)
{
	char hex[2 * 256 + 1], path[PATH_MAX];

	if (len < 2 || len > 256)
		return -1;
	for (size_t i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", id[i]);
	for (size_t d = 0; d < s->ndirs; d++) {
		for (int layout = 0; layout < 2; layout++) {
			int n = layout == 0 ?
				snprintf(path, sizeof(path), "%s/.build-id/%.2s/%s%s",
					 s->dirs[d], hex, hex + 2, suffix) :
				snprintf(path, sizeof(path), "%s/%s/%s", s->dirs[d],
					 hex, cache_name);
			if (n <= 0 || (size_t)n >= sizeof(path))
				continue;
			int fd = open_elf(path, want, id, len, facts);
			if (fd >= 0) {
				*found = strdup(path);
				if (*found)
					return fd;
				close(fd);
				return -1;
			}
		}
	}
	return -1;
}

/* ---- libdwfl callbacks ------------------------------------------------------ */

static int no_find_elf(Dwfl_Module *mod, void **userdata, const char *modname,
		       Dwarf_Addr base, char **file_name, Elf **elfp)
{
	return -1; /* every module is reported with its file */
}

/* The directory part of `path` ("." for none, "/" for the root), in buf. */
static const char *dir_of(const char *path, char *buf, size_t size)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;

	if (slash && n == 0)
		n = 1;
	if (!slash || n >= size)
		return ".";
	memcpy(buf, path, n);
	buf[n] = '\0';
	return buf;
}

static int open_found(const char *path, enum elf_want want, const void *id,
		      size_t id_len, char **name)
{
	int fd = open_elf(path, want, id, id_len, NULL);

	if (fd >= 0 && !(*name = strdup(path))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* The separate debug file of a module without DWARF of its own. */
static int find_debug_file(struct sym_module *m, const char *debuglink,
			   GElf_Word crc, char **name)
{
	struct mt_symbolizer *s = m->sym;
	const unsigned char *id = NULL;
	GElf_Addr vaddr;
	int len = dwfl_module_build_id(m->mod, &id, &vaddr);
	char dir[PATH_MAX], path[PATH_MAX];
	int fd;

	if (len > 0) {
		fd = find_by_id(s, WANT_MODULE, id, (size_t)len, ".debug", "debuginfo",
				NULL, name);
		if (fd >= 0)
			return fd;
	}
	if (!debuglink || !*debuglink || strchr(debuglink, '/'))
		return -1;
	dir_of(m->main_file, dir, sizeof(dir));
	/* next to the binary, in .debug/ beside it, then under each directory */
	for (size_t i = 0; i < 2 + s->ndirs; i++) {
		int n = i == 0 ? snprintf(path, sizeof(path), "%s/%s", dir, debuglink) :
			i == 1 ? snprintf(path, sizeof(path), "%s/.debug/%s", dir, debuglink) :
			snprintf(path, sizeof(path), "%s%s/%s", s->dirs[i - 2],
				 dir, debuglink);
		if (n <= 0 || (size_t)n >= sizeof(path) || strcmp(path, m->main_file) == 0)
			continue;
		if (len > 0) {
			fd = open_found(path, WANT_MODULE, id, (size_t)len, name);
		} else {
			fd = open_found(path, WANT_MODULE, NULL, 0, name);
			if (fd >= 0 && !file_crc_is(fd, crc)) {
				close(fd);
				free(*name);
				*name = NULL;
				fd = -1;
			}
		}
		if (fd >= 0)
			return fd;
	}
	return -1;
}

/* dwz's shared file: .gnu_debugaltlink holds its name and build-id. */
static int find_alt_file(struct sym_module *m, char **name)
{
	const char *with_link = m->debug_file ? m->debug_file : m->main_file;
	char dir[PATH_MAX], path[PATH_MAX];
	int fd = open(with_link, O_RDONLY | O_CLOEXEC);
	int found = -1;

	if (fd < 0)
		return -1;
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	size_t shstrndx;
	Elf_Scn *scn = NULL;
	if (!elf || elf_getshdrstrndx(elf, &shstrndx))
		goto out;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr mem, *sh = gelf_getshdr(scn, &mem);
		const char *n = sh ? elf_strptr(elf, shstrndx, sh->sh_name) : NULL;
		if (!n || strcmp(n, ".gnu_debugaltlink") != 0)
			continue;
		Elf_Data *data = elf_getdata(scn, NULL);
		const char *alt = data ? data->d_buf : NULL;
		const char *nul = alt ? memchr(alt, '\0', data->d_size) : NULL;
		if (!nul)
			break;
		const uint8_t *id = (const uint8_t *)nul + 1;
		size_t id_len = data->d_size - (size_t)(nul + 1 - alt);
		if (id_len == 0)
			break;
		found = find_by_id(m->sym, WANT_DWZ, id, id_len, ".debug", "debuginfo",
				   NULL, name);
		if (found >= 0)
			break;
		int k = alt[0] == '/' ?
			snprintf(path, sizeof(path), "%s", alt) :
			snprintf(path, sizeof(path), "%s/%s",
				 dir_of(with_link, dir, sizeof(dir)), alt);
		if (k > 0 && (size_t)k < sizeof(path))
			found = open_found(path, WANT_DWZ, id, id_len, name);
		break;
	}
out:
	elf_end(elf);
	close(fd);
	return found;
}

/* libdwfl calls this for a module whose file has no DWARF (with the file's
 * .gnu_debuglink), and then, once DWARF is loaded, for dwz's alt file if
 * that DWARF names one. */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
			  Dwarf_Addr base, const char *file_name,
			  const char *debuglink, GElf_Word crc, char **name)
{
	struct sym_module *m = *userdata;

	if (!m)
		return -1;
	if (m->alt_next)
		return find_alt_file(m, name);
	int fd = find_debug_file(m, debuglink, crc, name);
	if (fd >= 0) {
		m->alt_next = true;
		free(m->debug_file);
		m->debug_file = strdup(*name);
	}
	return fd;
}

static const Dwfl_Callbacks callbacks = {
	.find_elf = no_find_elf,
	.find_debuginfo = find_debuginfo,
	.section_address = dwfl_offline_section_address,
};

/* ---- modules ------------------------------------------------------------------ */

static uint64_t module_hash(const char *path, const uint8_t *id, uint32_t len)
{
	uint64_t h = hash_bytes(0xcbf29ce484222325ull, path, strlen(path));

	h = hash_bytes(h ^ 0xff, &len, sizeof(len));
	return hash_bytes(h, id, len);
}

static bool module_is(const struct sym_module *m, uint64_t h, const char *path,
		      const uint8_t *id, uint32_t len)
{
	return m->hash == h && m->build_id_len == len &&
	       (len == 0 || memcmp(m->build_id, id, len) == 0) &&
	       strcmp(m->path, path) == 0;
}

static void key_of(const struct mt_sym_module *m, const char **path,
		   const uint8_t **id, uint32_t *len)
{
	*path = m->path ? m->path : "";
	*id = m->build_id;
	*len = m->build_id ? m->build_id_len : 0;
}

static struct sym_module *module_find(struct mt_symbolizer *s, uint64_t h,
				      const char *path, const uint8_t *id,
				      uint32_t len, uint32_t **slot)
{
	if (!s->mod_index)
		return NULL;
	for (uint32_t i = (uint32_t)h & s->mod_index_mask;;
	     i = (i + 1) & s->mod_index_mask) {
		uint32_t v = s->mod_index[i];
		if (v == 0) {
			if (slot)
				*slot = &s->mod_index[i];
			return NULL;
		}
		if (module_is(s->mods[v - 1], h, path, id, len))
			return s->mods[v - 1];
	}
}

static int mod_index_grow(struct mt_symbolizer *s)
{
	uint32_t cap = s->mod_index ? (s->mod_index_mask + 1) * 2 : 64;
	uint32_t *t = calloc(cap, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (uint32_t k = 0; k < s->nmods; k++) {
		uint32_t i = (uint32_t)s->mods[k]->hash & (cap - 1);
		while (t[i])
			i = (i + 1) & (cap - 1);
		t[i] = k + 1;
	}
	free(s->mod_index);
	s->mod_index = t;
	s->mod_index_mask = cap - 1;
	return 0;
}

/* Ends the module's session; what was cached from it stays. */
static void module_close(struct mt_symbolizer *s, struct sym_module *m)
{
	if (!m->dwfl)
		return;
	dwfl_end(m->dwfl);
	m->dwfl = NULL;
	m->mod = NULL;
	free(m->main_file);
	free(m->debug_file);
	free(m->syms);
	for (size_t i = 0; m->cus && i <= m->cus_mask; i++)
		free(m->cus[i].ranges);
	free(m->cus);
	m->cus = NULL;
	m->cus_mask = m->cus_used = 0;
	m->main_file = m->debug_file = NULL;
	m->syms = NULL;
	m->nsyms = 0;
	m->syms_loaded = false;
	m->alt_next = false;
	s->nopen--;
}

/* Finds the file, reports it to a Dwfl session of its own. */
static void module_open(struct mt_symbolizer *s, struct sym_module *m)
{
	struct elf_facts facts = { 0 };
	char *file = NULL;
	int fd = -1;

	m->tried = true;
	m->found = false;
	if (s->nopen >= MT_SYM_OPEN_MAX) {
		struct sym_module *lru = NULL;
		for (uint32_t i = 0; i < s->nmods; i++)
			if (s->mods[i]->dwfl && (!lru || s->mods[i]->used < lru->used))
				lru = s->mods[i];
		if (lru)
			module_close(s, lru);
	}
	if (m->build_id_len)
		fd = find_by_id(s, WANT_MODULE, m->build_id, m->build_id_len, "",
				"executable",
				&facts, &file);
	if (fd < 0 && m->path[0] == '/') {
		/* /proc/PID/exe of a program replaced while it ran */
		static const char deleted[] = " (deleted)";
		size_t n = strlen(m->path), k = sizeof(deleted) - 1;
		file = strdup(m->path);
		if (file && n > k && strcmp(file + n - k, deleted) == 0)
			file[n - k] = '\0';
		fd = file ? open_elf(file, WANT_MODULE, m->build_id, m->build_id_len,
				     &facts) : -1;
		if (fd < 0) {
			free(file);
			file = NULL;
		}
	}
	if (fd < 0 && m->build_id_len)
		fd = find_by_id(s, WANT_MODULE, m->build_id, m->build_id_len, ".debug",
				"debuginfo", &facts, &file);
	if (fd < 0)
		return;

	m->dwfl = dwfl_begin(&callbacks);
	if (!m->dwfl)
		goto out_close;
	dwfl_report_begin(m->dwfl);
	m->main_file = file;
	m->mod = dwfl_report_elf(m->dwfl, m->path[0] ? m->path : file, file, fd,
				 0, true);
	if (!m->mod)
		goto out_end;
	fd = -1; /* the session owns it now */
	if (dwfl_report_end(m->dwfl, NULL, NULL) != 0)
		goto out_end;

	void **userdata;
	dwfl_module_info(m->mod, &userdata, &m->start, &m->end, NULL, NULL,
			 NULL, NULL);
	*userdata = m;
	GElf_Addr bias = 0;
	if (!dwfl_module_getelf(m->mod, &bias))
		goto out_end;
	m->bias = bias;
	/* DWARF with dwz's link already in the file: the first callback
	 * asks for the alt file. */
	m->alt_next = facts.has_altlink;
	m->found = true;
	s->nopen++;
	return;

out_end:
	dwfl_end(m->dwfl);
	m->dwfl = NULL;
	m->mod = NULL;
out_close:
	if (fd >= 0)
		close(fd);
	m->main_file = NULL;
	free(file);
}

/* The module for `key`, created (not loaded) on first sight; NULL on ENOMEM. */
static struct sym_module *module_get(struct mt_symbolizer *s,
				     const struct mt_sym_module *key)
{
	const char *path;
	const uint8_t *id;
	uint32_t len, *slot = NULL;

	key_of(key, &path, &id, &len);
	struct recent *r = &s->recent[((uintptr_t)path >> 3) % RECENT];
	if (r->path == path && r->m->build_id_len == len &&
	    (len == 0 || memcmp(r->m->build_id, id, len) == 0) &&
	    strcmp(r->m->path, path) == 0)
		return r->m;

	uint64_t h = module_hash(path, id, len);
	struct sym_module *m = module_find(s, h, path, id, len, NULL);
	if (m) {
		*r = (struct recent){ path, m };
		return m;
	}
	if (s->nmods == UINT32_MAX - 1)
		return NULL;
	if ((s->nmods + 1) * 2 > (s->mod_index ? s->mod_index_mask + 1 : 0) &&
	    mod_index_grow(s))
		return NULL;
	if (s->nmods == s->mods_cap) {
		uint32_t cap = s->mods_cap ? s->mods_cap * 2 : 16;
		struct sym_module **t = realloc(s->mods, cap * sizeof(*t));
		if (!t)
			return NULL;
		s->mods = t;
		s->mods_cap = cap;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->path = strdup(path);
	m->build_id = len ? malloc(len) : NULL;
	if (!m->path || (len && !m->build_id)) {
		free(m->path);
		free(m->build_id);
		free(m);
		return NULL;
	}
	if (len)
		memcpy(m->build_id, id, len);
	m->build_id_len = len;
	m->hash = h;
	m->sym = s;
	s->mods[s->nmods++] = m;
	m->id = s->nmods;
	module_find(s, h, path, id, len, &slot);
	*slot = m->id;
	*r = (struct recent){ path, m };
	return m;
}

/* ---- resolving one address ---------------------------------------------------- */

/* Removes "." segments and folds "dir/.." in place, lexically (for display:
 * a symbolic link in the path is not followed). */
static void normalize_path(char *path)
{
	char *start = path + (path[0] == '/'), *p = start, *out = start;
	size_t kept = 0; /* segments in [start, out) that ".." may remove */

	while (*p) {
		while (*p == '/')
			p++;
		char *seg = p;
		while (*p && *p != '/')
			p++;
		size_t len = (size_t)(p - seg);
		if (len == 0 || (len == 1 && seg[0] == '.'))
			continue;
		if (len == 2 && seg[0] == '.' && seg[1] == '.') {
			if (kept > 0) {
				while (out > start && out[-1] != '/')
					out--;
				if (out > start)
					out--; /* the separator */
				kept--;
				continue;
			}
			if (start > path)
				continue; /* "/.." is "/" */
		} else {
			kept++;
		}
		if (out > start)
			*out++ = '/';
		memmove(out, seg, len);
		out += len;
	}
	if (out == path)
		*out++ = '.';
	*out = '\0';
}

/* A source file name, normalized.  libdw gives names relative to the
 * compilation directory when it was the directory of the file: such a name
 * is joined to it when it is absolute.  A relative compilation directory
 * (a build with -ffile-prefix-map=/build/x=.) is left out: libdw has already
 * joined the names in other directories to theirs, relative too. */
static const char *intern_file(struct mt_symbolizer *s, const char *file,
			       const char *comp_dir)
{
	char path[PATH_MAX];
	int n;

	if (!file || !*file)
		return NULL;
	if (file[0] != '/' && comp_dir && comp_dir[0] == '/')
		n = snprintf(path, sizeof(path), "%s/%s", comp_dir, file);
	else
		n = snprintf(path, sizeof(path), "%s", file);
	if (n <= 0 || (size_t)n >= sizeof(path))
		return intern_str(s, file);
	normalize_path(path);
	return intern_str(s, path);
}

static const char *die_name(struct mt_symbolizer *s, Dwarf_Die *die)
{
	static const unsigned attrs[] = { DW_AT_linkage_name, DW_AT_MIPS_linkage_name,
					  DW_AT_name };
	Dwarf_Attribute mem;

	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		const char *n = dwarf_formstring(dwarf_attr_integrate(die, attrs[i], &mem));
		if (n && *n)
			return intern_name(s, n);
	}
	return NULL;
}

#define SCOPES_MAX 256 /* DIE nesting followed from a CU down */

/* Finds, among the children of `parent`, the DIE whose code ranges hold
 * `pc`, and under it the next, down to the innermost: chain[n], chain[n+1],
 * ...  Namespaces and imported (dwz partial) units hold DIEs without being
 * scopes of code: their children are searched in place.  Returns the depth
 * reached.  One pruned descent; libdw's dwarf_getscopes walks the whole CU
 * again for an inlined function's abstract origin, and dwarf_getscopes_die
 * searches it from the top: 30 times slower on libc. */
static int find_scopes(Dwarf_Die *parent, Dwarf_Addr pc, Dwarf_Die *chain, int n,
		       int containers)
{
	Dwarf_Die child, inner;
	Dwarf_Attribute mem;

	if (n >= SCOPES_MAX || dwarf_child(parent, &child) != 0)
		return n;
	do {
		switch (dwarf_tag(&child)) {
		case DW_TAG_namespace:
		case DW_TAG_module:
		case DW_TAG_imported_unit:
			if (containers >= 16)
				break;
			inner = child;
			if (dwarf_tag(&child) == DW_TAG_imported_unit &&
			    !dwarf_formref_die(dwarf_attr(&child, DW_AT_import, &mem), &inner))
				break;
			int k = find_scopes(&inner, pc, chain, n, containers + 1);
			if (k > n)
				return k;
			break;
		default:
			if (dwarf_haspc(&child, pc) == 1) {
				chain[n] = child;
				return find_scopes(&chain[n], pc, chain, n + 1, containers);
			}
		}
	} while (dwarf_siblingof(&child, &child) == 0);
	return n;
}

/* By address; at one address the DIE that comes first in the CU last, where
 * the bisection meets it first (gas describes an assembler function and its
 * aliases as DIEs with one range: the first carries the name written). */
static int range_cmp(const void *pa, const void *pb)
{
	const struct cu_range *a = pa, *b = pb;

	if (a->lo != b->lo)
		return a->lo < b->lo ? -1 : 1;
	return a->order < b->order ? 1 : a->order > b->order ? -1 : 0;
}

/* Adds the ranges of the code DIEs among the children of `parent`. */
static int index_children(Dwarf_Die *parent, struct cu_range **v, size_t *n, size_t *cap,
			  int containers)
{
	Dwarf_Die child, inner;
	Dwarf_Attribute mem;

	if (dwarf_child(parent, &child) != 0)
		return 0;
	do {
		switch (dwarf_tag(&child)) {
		case DW_TAG_namespace:
		case DW_TAG_module:
		case DW_TAG_imported_unit:
			inner = child;
			if (containers >= 16 ||
			    (dwarf_tag(&child) == DW_TAG_imported_unit &&
			     !dwarf_formref_die(dwarf_attr(&child, DW_AT_import, &mem), &inner)))
				break;
			if (index_children(&inner, v, n, cap, containers + 1))
				return -ENOMEM;
			break;
		default:;
			Dwarf_Addr base, lo, hi;
			ptrdiff_t off = 0;
			while ((off = dwarf_ranges(&child, off, &base, &lo, &hi)) > 0) {
				if (lo >= hi)
					continue;
				if (*n == *cap) {
					size_t c = *cap ? *cap * 2 : 64;
					struct cu_range *t = realloc(*v, c * sizeof(*t));
					if (!t)
						return -ENOMEM;
					*v = t;
					*cap = c;
				}
				(*v)[*n] = (struct cu_range){ lo, hi, *n, child };
				(*n)++;
			}
		}
	} while (dwarf_siblingof(&child, &child) == 0);
	return 0;
}

/* The CU's index, built on first use; NULL on ENOMEM. */
static struct cu_index *cu_index(struct sym_module *m, Dwarf_Die *cu)
{
	const void *key = cu->addr;
	uint64_t h = mix64((uintptr_t)key);

	if ((m->cus_used + 1) * 2 > (m->cus ? m->cus_mask + 1 : 0)) {
		size_t cap = m->cus ? (m->cus_mask + 1) * 2 : 64;
		struct cu_index *t = calloc(cap, sizeof(*t));
		if (!t)
			return NULL;
		for (size_t i = 0; m->cus && i <= m->cus_mask; i++) {
			if (!m->cus[i].key)
				continue;
			size_t j = mix64((uintptr_t)m->cus[i].key) & (cap - 1);
			while (t[j].key)
				j = (j + 1) & (cap - 1);
			t[j] = m->cus[i];
		}
		free(m->cus);
		m->cus = t;
		m->cus_mask = cap - 1;
	}
	size_t i = h & m->cus_mask;
	for (; m->cus[i].key; i = (i + 1) & m->cus_mask)
		if (m->cus[i].key == key)
			return &m->cus[i];
	struct cu_index *e = &m->cus[i];
	size_t cap = 0;
	*e = (struct cu_index){ .key = key };
	if (index_children(cu, &e->ranges, &e->n, &cap, 0)) {
		free(e->ranges);
		e->key = NULL;
		return NULL;
	}
	qsort(e->ranges, e->n, sizeof(*e->ranges), range_cmp);
	m->cus_used++;
	return e;
}

/* The scopes holding `pc`, outermost first, through the CU's index. */
static int cu_scopes(struct sym_module *m, Dwarf_Die *cu, Dwarf_Addr pc, Dwarf_Die *chain)
{
	struct cu_index *e = cu_index(m, cu);

	if (!e)
		return find_scopes(cu, pc, chain, 0, 0);
	size_t lo = 0, hi = e->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (e->ranges[mid].lo <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* outermost code DIEs do not nest, but a few may overlap (bad
	 * DWARF, or ranges of a function and its own out-of-line part) */
	for (size_t k = lo, tries = 0; k-- > 0 && tries < 8; tries++) {
		if (pc < e->ranges[k].hi) {
			chain[0] = e->ranges[k].die;
			return find_scopes(&chain[0], pc, chain, 1, 0);
		}
	}
	return 0;
}

/* Frames from DWARF: the chain of inlined subroutines that contain `addr`,
 * up to the subprogram.  The innermost gets the line table's file:line;
 * each outer one the call site of the inlined call it contains. */
static int dwarf_frames(struct mt_symbolizer *s, struct sym_module *m,
			Dwarf_Addr addr, struct mt_sym_frame *out)
{
	Dwarf_Addr dwbias;
	Dwarf_Die *cu = dwfl_module_addrdie(m->mod, addr, &dwbias);
	Dwarf_Die chain[SCOPES_MAX];
	Dwarf_Files *files = NULL;
	Dwarf_Attribute mem;
	int n = 0, line = 0;

	if (!cu)
		return 0;
	int nchain = cu_scopes(m, cu, addr - dwbias, chain);
	if (nchain == 0)
		return 0;

	const char *comp_dir = dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &mem));
	const char *file = NULL;
	Dwfl_Line *l = dwfl_module_getsrc(m->mod, addr);
	if (l)
		file = dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL);
	if (dwarf_getsrcfiles(cu, &files, NULL) != 0)
		files = NULL;

	for (int i = nchain - 1; i >= 0 && n < FRAMES_MAX; i--) {
		int tag = dwarf_tag(&chain[i]);
		if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram &&
		    tag != DW_TAG_entry_point)
			continue;
		out[n] = (struct mt_sym_frame){
			.function = die_name(s, &chain[i]),
			.file = intern_file(s, file, comp_dir),
			.line = line > 0 ? (unsigned)line : 0,
			.inlined = tag == DW_TAG_inlined_subroutine,
		};
		n++;
		if (tag != DW_TAG_inlined_subroutine)
			break;
		Dwarf_Word v;
		file = NULL;
		line = 0;
		if (files && dwarf_formudata(dwarf_attr(&chain[i], DW_AT_call_file, &mem), &v) == 0)
			file = dwarf_filesrc(files, v, NULL, NULL);
		if (dwarf_formudata(dwarf_attr(&chain[i], DW_AT_call_line, &mem), &v) == 0 &&
		    v <= 0x7fffffff)
			line = (int)v;
	}
	return n;
}

/* ---- the symbol table ----------------------------------------------------------- */

static int sym_cmp(const void *pa, const void *pb)
{
	const struct elf_sym *a = pa, *b = pb;

	if (a->addr != b->addr)
		return a->addr < b->addr ? -1 : 1;
	if (a->rank != b->rank)
		return a->rank > b->rank ? -1 : 1; /* best first */
	return 0;
}

/* The section `shndx` of `elf`, if it holds code. */
static const GElf_Shdr *code_section(Elf *elf, GElf_Word shndx, GElf_Shdr *mem)
{
	const GElf_Shdr *sh = elf && shndx != SHN_UNDEF && shndx < SHN_LORESERVE ?
		gelf_getshdr(elf_getscn(elf, shndx), mem) : NULL;

	return sh && (sh->sh_flags & SHF_EXECINSTR) ? sh : NULL;
}

/* Functions of the module's symbol table (.symtab, else .dynsym), sorted by
 * address, one per address: a global name before a weak one before a local
 * one, a sized symbol before a sizeless one.  A sizeless symbol (assembler
 * without .size, _init) reaches to the next symbol or the end of its
 * section, whichever comes first. */
static void symtab_load(struct sym_module *m)
{
	int count = dwfl_module_getsymtab(m->mod);
	size_t n = 0;

	m->syms_loaded = true;
	if (count <= 1)
		return;
	m->syms = malloc((size_t)count * sizeof(*m->syms));
	if (!m->syms)
		return;
	for (int i = 1; i < count; i++) {
		GElf_Sym sym;
		GElf_Addr addr;
		GElf_Word shndx;
		GElf_Shdr mem;
		Elf *elf;
		Dwarf_Addr bias;
		const char *name = dwfl_module_getsym_info(m->mod, i, &sym, &addr, &shndx,
							   &elf, &bias);
		int type = GELF_ST_TYPE(sym.st_info), bind = GELF_ST_BIND(sym.st_info);
		if (!name || !*name || name[0] == '$' || (name[0] == '.' && name[1] == 'L') ||
		    (type != STT_FUNC && type != STT_GNU_IFUNC && type != STT_NOTYPE))
			continue;
		const GElf_Shdr *sh = code_section(elf, shndx, &mem);
		if (!sh)
			continue;
		Dwarf_Addr size = sym.st_size;
		if (size == 0) {
			Dwarf_Addr end = sh->sh_addr + sh->sh_size + bias;
			size = end > addr ? end - addr : 0;
		}
		m->syms[n++] = (struct elf_sym){
			.addr = addr,
			.size = size,
			.name = name,
			.rank = (bind == STB_GLOBAL ? 8 : bind == STB_WEAK ? 4 : 0) +
				(sym.st_size ? 2 : 0) + (type != STT_NOTYPE),
			.sizeless = sym.st_size == 0,
		};
	}
	qsort(m->syms, n, sizeof(*m->syms), sym_cmp);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (k == 0 || m->syms[k - 1].addr != m->syms[i].addr)
			m->syms[k++] = m->syms[i];
	for (size_t i = 0; i + 1 < k; i++)
		if (m->syms[i].sizeless && m->syms[i + 1].addr - m->syms[i].addr < m->syms[i].size)
			m->syms[i].size = m->syms[i + 1].addr - m->syms[i].addr;
	m->nsyms = k;
}

/* The function containing `addr`: the last symbol at or below it, if it
 * reaches that far. */
static const char *symtab_name(struct sym_module *m, Dwarf_Addr addr)
{
	if (!m->syms_loaded)
		symtab_load(m);
	size_t lo = 0, hi = m->nsyms;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->syms[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct elf_sym *e = &m->syms[lo - 1];
	return addr - e->addr < e->size ? e->name : NULL;
}

static int resolve(struct mt_symbolizer *s, struct sym_module *m, uint64_t offset,
		   struct mt_sym_frame *out)
{
	if (!m->dwfl || offset > UINT64_MAX - m->bias)
		return 0;
	Dwarf_Addr addr = m->bias + offset;
	if (addr < m->start || addr >= m->end)
		return 0;

	int n = dwarf_frames(s, m, addr, out);
	/* The containing function unnamed in DWARF (or no DWARF scope at
	 * all: assembler, no debug info): the symbol table's name. */
	if (n == 0 || !out[n - 1].function) {
		const char *name = symtab_name(m, addr);
		if (name) {
			if (n == 0) {
				out[0] = (struct mt_sym_frame){ 0 };
				Dwfl_Line *l = dwfl_module_getsrc(m->mod, addr);
				int line = 0;
				const char *file = l ? dwfl_lineinfo(l, NULL, &line, NULL,
								     NULL, NULL) : NULL;
				const char *comp_dir = l ? dwfl_line_comp_dir(l) : NULL;
				out[0].file = intern_file(s, file, comp_dir);
				out[0].line = line > 0 ? (unsigned)line : 0;
				n = 1;
			}
			out[n - 1].function = intern_name(s, name);
		}
	}
	return n;
}

/* ---- the address cache --------------------------------------------------------- */

static inline uint64_t addr_hash(uint32_t module, uint64_t offset)
{
	return mix64(offset ^ ((uint64_t)module << 40) ^ module);
}

static int slots_grow(struct mt_symbolizer *s)
{
	uint64_t cap = s->slots ? (s->slots_mask + 1) * 2 : 4096;
	struct addr_slot *t = calloc(cap, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (uint64_t i = 0; s->slots && i <= s->slots_mask; i++) {
		struct addr_slot *o = &s->slots[i];
		if (!o->module)
			continue;
		uint64_t j = addr_hash(o->module, o->offset) & (cap - 1);
		while (t[j].module)
			j = (j + 1) & (cap - 1);
		t[j] = *o;
	}
	free(s->slots);
	s->slots = t;
	s->slots_mask = cap - 1;
	return 0;
}

static struct addr_slot *slot_find(struct mt_symbolizer *s, uint32_t module,
				   uint64_t offset)
{
	uint64_t i = addr_hash(module, offset) & s->slots_mask;

	for (;; i = (i + 1) & s->slots_mask) {
		struct addr_slot *e = &s->slots[i];
		if (!e->module || (e->module == module && e->offset == offset))
			return e;
	}
}

/* Resolves and caches; NULL on ENOMEM (nothing cached). */
static struct addr_slot *slot_fill(struct mt_symbolizer *s, struct sym_module *m,
				   uint64_t offset)
{
	struct mt_sym_frame fr[FRAMES_MAX];

	if (!m->tried || (m->found && !m->dwfl))
		module_open(s, m);
	m->used = ++s->tick;
	int n = resolve(s, m, offset, fr);
	if (s->nframes + (uint64_t)n > s->frames_cap) {
		uint64_t cap = s->frames_cap ? s->frames_cap * 2 : 4096;
		while (cap < s->nframes + (uint64_t)n)
			cap *= 2;
		struct mt_sym_frame *t = realloc(s->frames, cap * sizeof(*t));
		if (!t)
			return NULL;
		s->frames = t;
		s->frames_cap = cap;
	}
	if ((s->slots_used + 1) * 2 > (s->slots ? s->slots_mask + 1 : 0) &&
	    slots_grow(s))
		return NULL;
	struct addr_slot *e = slot_find(s, m->id, offset);
	*e = (struct addr_slot){ .offset = offset, .module = m->id, .n = (uint32_t)n,
				 .first = s->nframes };
	if (n > 0)
		memcpy(s->frames + s->nframes, fr, (size_t)n * sizeof(fr[0]));
	s->nframes += (uint64_t)n;
	s->slots_used++;
	return e;
}

/* ---- the interface ---------------------------------------------------------------- */

int mt_sym_new(struct mt_symbolizer **out, const char *debug_path)
{
	struct mt_symbolizer *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s)
		return -ENOMEM;
	elf_version(EV_CURRENT);
	if (make_dirs(s, debug_path) || slots_grow(s) || strs_grow(s) ||
	    mod_index_grow(s)) {
		mt_sym_free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

void mt_sym_free(struct mt_symbolizer *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->nmods; i++) {
		struct sym_module *m = s->mods[i];
		module_close(s, m);
		free(m->path);
		free(m->build_id);
		free(m);
	}
	free(s->mods);
	free(s->mod_index);
	for (size_t i = 0; i < s->ndirs; i++)
		free(s->dirs[i]);
	free(s->dirs);
	free(s->slots);
	free(s->frames);
	free(s->strs);
	while (s->blocks) {
		struct str_block *b = s->blocks;
		s->blocks = b->next;
		free(b);
	}
	free(s);
}

int mt_sym_lookup(struct mt_symbolizer *s, const struct mt_sym_module *m,
		  uint64_t offset, struct mt_sym_frame *out, int max)
{
	if (!s || !m || !out || max <= 0)
		return 0;
	struct sym_module *mod = module_get(s, m);
	if (!mod)
		return 0;
	struct addr_slot *e = slot_find(s, mod->id, offset);
	if (!e->module && !(e = slot_fill(s, mod, offset)))
		return 0;
	int n = e->n < (uint32_t)max ? (int)e->n : max;
	if (n > 0)
		memcpy(out, s->frames + e->first, (size_t)n * sizeof(*out));
	return n;
}

bool mt_sym_module_found(struct mt_symbolizer *s, const struct mt_sym_module *m)
{
	const char *path;
	const uint8_t *id;
	uint32_t len;

	if (!s || !m)
		return false;
	key_of(m, &path, &id, &len);
	struct sym_module *mod = module_find(s, module_hash(path, id, len), path,
					     id, len, NULL);
	return mod && mod->tried && mod->found;
}
