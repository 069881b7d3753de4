/* Call-frame rules from .eh_frame, for the stack walker (unwind.h).
 *
 * An address is looked up the way libunwind 1.6 looks it up (dwarf_callback
 * and dwarf_search_unwind_table): the object whose PT_LOAD segment holds
 * it, that object's PT_GNU_EH_FRAME binary-search table, the last entry
 * that starts at or below the address, and that FDE only if its range
 * holds the address.  The CIE's and then the FDE's instructions run while
 * the location reached is at or below the address (libunwind's
 * run_cfi_program), and the row is classified as libunwind's fast trace
 * classifies it (x86-64 tdep_stash_frame: a "standard" frame has its CFA
 * at rsp or rbp plus a constant, the return address at CFA - 8, rbp
 * unchanged or saved at a constant offset from the CFA).  Everything else,
 * and everything this file does not fully understand, is MT_CFI_SLOW: the
 * caller then asks libunwind, so the two can only agree.
 *
 * Nothing here allocates; reads stay inside the lengths the unwind
 * sections give. */
#include "config.h"

#include "unwind.h"

#include <link.h>
#include <stddef.h>
#include <string.h>

#define NREGS 17       /* registers libunwind tracks on x86-64 (0..16) */
#define REG_RBP 6      /* DWARF register numbers */
#define REG_RSP 7
#define REG_RA 16
#define STATES_MAX 8   /* DW_CFA_remember_state depth we follow */
#define OFF_LIMIT (1 << 14)  /* libunwind's bound on saved-register offsets */
#define CFA_LIMIT (1 << 28)  /* and on the CFA offset */

#define PE_OMIT 0xff      /* pointer encodings (DW_EH_PE_*) */
#define PE_PCREL 0x10
#define PE_INDIRECT 0x80
#define PE_TABLE 0x3b     /* datarel | sdata4: the binary-search table */

enum where { W_SAME, W_UNDEF, W_CFAREL, W_REG, W_EXPR };
enum cfa_kind { CFA_NONE, CFA_REG, CFA_EXPR };

/* A row of the CFA table, as far as the classification needs it. */
struct row {
	uint8_t where[NREGS]; /* enum where, per register */
	uint8_t cfa_kind;     /* enum cfa_kind */
	uint8_t cfa_reg;      /* with CFA_REG: its register */
	int64_t cfa_off;      /* with CFA_REG: bytes added */
	int64_t off[3];       /* W_CFAREL offsets (bytes) of rbp, rsp, ra */
};

struct cie {
	uint64_t code_align;  /* factor of advance_loc (bytes) */
	int64_t data_align;   /* factor of offsets (bytes) */
	uint8_t fde_enc;      /* FDE pointer encoding */
	uint8_t lsda_enc;     /* LSDA pointer encoding, PE_OMIT for none */
	bool sized;           /* 'z': augmentation data carry their length */
	const uint8_t *instr, *end; /* initial instructions */
};

/* ---- reading ---- */

struct rd {
	const uint8_t *p, *end;
	bool bad; /* a read went past end */
};

static uint64_t fixed(struct rd *r, unsigned n)
{
	uint64_t v = 0;

	if ((size_t)(r->end - r->p) < n) {
		r->bad = true;
		r->p = r->end;
		return 0;
	}
	memcpy(&v, r->p, n); /* little-endian */
	r->p += n;
	return v;
}

static uint8_t u8(struct rd *r)
{
	return (uint8_t)fixed(r, 1);
}

/* An LEB128 number, sign-extended if `sign`. */
static uint64_t leb(struct rd *r, bool sign)
{
	uint64_t v = 0;
	unsigned shift = 0;
	uint8_t b;

	do {
		b = u8(r);
		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
	} while ((b & 0x80) && !r->bad);
	if (sign && shift < 64 && (b & 0x40))
		v |= ~(uint64_t)0 << shift;
	return v;
}

static uint64_t uleb(struct rd *r)
{
	return leb(r, false);
}

static int64_t sleb(struct rd *r)
{
	return (int64_t)leb(r, true);
}

/* Reads a pointer encoded as enc into *out.  With out NULL the value is
 * only skipped (any application, indirect too).  False for what we do not
 * decode (aligned, textrel, datarel, funcrel, indirect values). */
static bool pointer(struct rd *r, uint8_t enc, uintptr_t *out)
{
	uintptr_t at = (uintptr_t)r->p;
	uint64_t v;

	if (enc == PE_OMIT) {
		if (out)
			*out = 0;
		return true;
	}
	switch (enc & 0x0f) {
	case 0x00: v = fixed(r, 8); break;                 /* absptr */
	case 0x01: v = uleb(r); break;                     /* uleb128 */
	case 0x02: v = fixed(r, 2); break;                 /* udata2 */
	case 0x03: v = fixed(r, 4); break;                 /* udata4 */
	case 0x04: v = fixed(r, 8); break;                 /* udata8 */
	case 0x09: v = (uint64_t)sleb(r); break;           /* sleb128 */
	case 0x0a: v = (uint64_t)(int16_t)fixed(r, 2); break; /* sdata2 */
	case 0x0b: v = (uint64_t)(int32_t)fixed(r, 4); break; /* sdata4 */
	case 0x0c: v = fixed(r, 8); break;                 /* sdata8 */
	default: return false;
	}
	if (r->bad)
		return false;
	if (!out)
		return true;
	if (enc & PE_INDIRECT)
		return false;
	switch (enc & 0x70) {
	case 0x00: break;
	case PE_PCREL: v += at; break;
	default: return false;
	}
	*out = (uintptr_t)v;
	return true;
}

/* ---- finding the FDE ---- */

struct find {
	uintptr_t ip;            /* the address looked up */
	bool first_only;         /* only read the loader's counts */
	bool counted;            /* gen is valid */
	struct mt_cfi_gen gen;
	const uint8_t *hdr;      /* .eh_frame_hdr of ip's object, or NULL */
	size_t hdr_size;         /* its segment's size (bytes) */
};

static int find_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct find *f = arg;
	const ElfW(Phdr) *text = NULL, *eh = NULL;

	if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs)) {
		f->gen.adds = info->dlpi_adds;
		f->gen.subs = info->dlpi_subs;
		f->counted = true;
	}
	if (f->first_only)
		return 1;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD) {
			if (f->ip - (info->dlpi_addr + ph->p_vaddr) < ph->p_memsz)
				text = ph;
		} else if (ph->p_type == PT_GNU_EH_FRAME) {
			eh = ph;
		}
	}
	if (!text)
		return 0;
	if (eh) {
		f->hdr = (const uint8_t *)(info->dlpi_addr + eh->p_vaddr);
		f->hdr_size = eh->p_memsz;
	}
	return 1;
}

static int32_t le32(const uint8_t *p)
{
	int32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* The FDE the binary-search table gives for f->ip (the last entry starting
 * at or below it, compared as libunwind does, in 32 bits relative to the
 * table's header), or NULL. */
static const uint8_t *search_table(const struct find *f)
{
	struct rd r = { f->hdr, f->hdr + f->hdr_size, false };
	uintptr_t eh_frame, count;

	if (u8(&r) != 1)
		return NULL; /* version */
	uint8_t ptr_enc = u8(&r), count_enc = u8(&r), table_enc = u8(&r);
	if (ptr_enc == PE_OMIT || count_enc == PE_OMIT || table_enc != PE_TABLE ||
	    !pointer(&r, ptr_enc, &eh_frame) || !pointer(&r, count_enc, &count) ||
	    count == 0 || count > (size_t)(r.end - r.p) / 8)
		return NULL;
	const uint8_t *table = r.p;
	int32_t rel = (int32_t)(f->ip - (uintptr_t)f->hdr);
	size_t lo = 0, hi = count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (rel < le32(table + 8 * mid))
			hi = mid;
		else
			lo = mid + 1;
	}
	if (hi == 0)
		return NULL;
	return f->hdr + le32(table + 8 * (hi - 1) + 4);
}

/* ---- CIE and FDE ---- */

/* The extent of a CIE or FDE at p: its contents after the length field. */
static bool entry(const uint8_t *p, struct rd *r)
{
	uint32_t len;

	memcpy(&len, p, sizeof(len));
	if (len == 0 || len == 0xffffffff) /* terminator, or 64-bit DWARF */
		return false;
	r->p = p + 4;
	r->end = p + 4 + len;
	r->bad = false;
	return true;
}

static bool parse_cie(const uint8_t *p, struct cie *c)
{
	struct rd r;
	char aug[8];
	size_t n = 0, i = 0;
	const uint8_t *aug_end = NULL;

	if (!entry(p, &r) || fixed(&r, 4) != 0) /* CIE id */
		return false;
	uint8_t version = u8(&r);
	if (version != 1 && version != 3)
		return false;
	for (;;) {
		uint8_t ch = u8(&r);
		if (r.bad)
			return false;
		if (!ch)
			break;
		if (n < sizeof(aug) - 1)
			aug[n++] = (char)ch;
	}
	aug[n] = '\0';
	c->code_align = uleb(&r);
	c->data_align = sleb(&r);
	if ((version == 1 ? u8(&r) : uleb(&r)) != REG_RA)
		return false;
	c->fde_enc = 0; /* absptr */
	c->lsda_enc = PE_OMIT;
	c->sized = aug[0] == 'z';
	if (c->sized) {
		uint64_t len = uleb(&r);
		if (r.bad || len > (size_t)(r.end - r.p))
			return false;
		aug_end = r.p + len;
		i = 1;
	}
	for (; aug[i]; i++) {
		if (aug[i] == 'L') {
			c->lsda_enc = u8(&r);
		} else if (aug[i] == 'R') {
			c->fde_enc = u8(&r);
		} else if (aug[i] == 'P') {
			if (!pointer(&r, u8(&r), NULL))
				return false;
		} else if (aug[i] == 'S' || !c->sized) {
			return false; /* a signal frame, or not understood */
		} else {
			break;        /* libunwind skips the rest by its length */
		}
	}
	if (c->sized)
		r.p = aug_end;
	if (r.bad)
		return false;
	c->instr = r.p;
	c->end = r.end;
	return true;
}

/* Parses the FDE at p; true if it covers ip, with its CIE in *c, its
 * start in *start and its instructions in [*instr, *end). */
static bool parse_fde(const uint8_t *p, uintptr_t ip, struct cie *c,
		      uintptr_t *start, const uint8_t **instr, const uint8_t **end)
{
	struct rd r;
	uintptr_t range;

	if (!entry(p, &r))
		return false;
	int32_t cie = (int32_t)fixed(&r, 4);
	if (cie == 0 || r.bad)
		return false; /* a CIE */
	if (!parse_cie(p + 4 - cie, c))
		return false;
	if (!pointer(&r, c->fde_enc, start) ||
	    !pointer(&r, c->fde_enc & 0x0f, &range))
		return false;
	if (ip < *start || ip - *start >= range)
		return false;
	if (c->sized) {
		uint64_t len = uleb(&r);
		if (r.bad || len > (size_t)(r.end - r.p))
			return false;
		r.p += len;
	} else if (!pointer(&r, c->lsda_enc, NULL)) {
		return false;
	}
	*instr = r.p;
	*end = r.end;
	return !r.bad;
}

/* ---- running the instructions ---- */

static int off_slot(uint64_t reg)
{
	return reg == REG_RBP ? 0 : reg == REG_RSP ? 1 : reg == REG_RA ? 2 : -1;
}

static void set(struct row *w, uint64_t reg, enum where where, int64_t off)
{
	int s = off_slot(reg);

	w->where[reg] = (uint8_t)where;
	if (s >= 0)
		w->off[s] = off;
}

static void restore(struct row *w, const struct row *init, uint64_t reg)
{
	int s = off_slot(reg);

	w->where[reg] = init->where[reg];
	if (s >= 0)
		w->off[s] = init->off[s];
}

/* A register operand; false (and r->bad) past the registers libunwind
 * tracks, which make its step fail. */
static bool regnum(struct rd *r, uint64_t *reg)
{
	*reg = uleb(r);
	if (*reg >= NREGS)
		r->bad = true;
	return !r->bad;
}

/* Runs the instructions [p, end) on *w from location loc while the
 * location reached is at or below target, as libunwind's run_cfi_program
 * does; init is the row after the CIE (NULL while running the CIE).
 * False on anything not understood. */
static bool run(const uint8_t *p, const uint8_t *end, const struct cie *c,
		uintptr_t loc, uintptr_t target, struct row *w,
		const struct row *init)
{
	struct row saved[STATES_MAX];
	unsigned depth = 0;
	struct rd r = { p, end, false };
	uint64_t reg, u;
	int64_t s;

	while (loc <= target && r.p < r.end) {
		uint8_t op = u8(&r);

		switch (op >> 6) {
		case 1: /* DW_CFA_advance_loc */
			loc += (op & 0x3f) * c->code_align;
			continue;
		case 2: /* DW_CFA_offset */
			reg = op & 0x3f;
			u = uleb(&r);
			if (reg >= NREGS)
				return false;
			set(w, reg, W_CFAREL, (int64_t)u * c->data_align);
			continue;
		case 3: /* DW_CFA_restore */
			reg = op & 0x3f;
			if (reg >= NREGS || !init)
				return false;
			restore(w, init, reg);
			continue;
		}
		switch (op) {
		case 0x00: /* DW_CFA_nop */
			break;
		case 0x02: /* DW_CFA_advance_loc1 */
			loc += u8(&r) * c->code_align;
			break;
		case 0x03: /* DW_CFA_advance_loc2 */
			loc += fixed(&r, 2) * c->code_align;
			break;
		case 0x04: /* DW_CFA_advance_loc4 */
			loc += fixed(&r, 4) * c->code_align;
			break;
		case 0x05: /* DW_CFA_offset_extended */
			if (regnum(&r, &reg))
				set(w, reg, W_CFAREL, (int64_t)uleb(&r) * c->data_align);
			break;
		case 0x06: /* DW_CFA_restore_extended */
			if (!regnum(&r, &reg) || !init)
				return false;
			restore(w, init, reg);
			break;
		case 0x07: /* DW_CFA_undefined */
			if (regnum(&r, &reg))
				set(w, reg, W_UNDEF, 0);
			break;
		case 0x08: /* DW_CFA_same_value */
			if (regnum(&r, &reg))
				set(w, reg, W_SAME, 0);
			break;
		case 0x09: /* DW_CFA_register */
			if (regnum(&r, &reg)) {
				uleb(&r);
				set(w, reg, W_REG, 0);
			}
			break;
		case 0x0a: /* DW_CFA_remember_state */
			if (depth == STATES_MAX)
				return false;
			saved[depth++] = *w;
			break;
		case 0x0b: /* DW_CFA_restore_state */
			/* libunwind 1.6 leaves a restore at the looked-up
			 * address itself unapplied: not ours to guess. */
			if (!depth || loc == target)
				return false;
			*w = saved[--depth];
			break;
		case 0x0c: /* DW_CFA_def_cfa */
			if (regnum(&r, &reg)) {
				w->cfa_kind = CFA_REG;
				w->cfa_reg = (uint8_t)reg;
				w->cfa_off = (int64_t)uleb(&r);
			}
			break;
		case 0x0d: /* DW_CFA_def_cfa_register */
			if (regnum(&r, &reg)) {
				w->cfa_kind = CFA_REG;
				w->cfa_reg = (uint8_t)reg;
			}
			break;
		case 0x0e: /* DW_CFA_def_cfa_offset */
			w->cfa_off = (int64_t)uleb(&r);
			break;
		case 0x0f: /* DW_CFA_def_cfa_expression */
			u = uleb(&r);
			if (u > (size_t)(r.end - r.p))
				return false;
			r.p += u;
			w->cfa_kind = CFA_EXPR;
			break;
		case 0x10: /* DW_CFA_expression */
		case 0x16: /* DW_CFA_val_expression */
			if (!regnum(&r, &reg))
				return false;
			u = uleb(&r);
			if (u > (size_t)(r.end - r.p))
				return false;
			r.p += u;
			set(w, reg, W_EXPR, 0);
			break;
		case 0x11: /* DW_CFA_offset_extended_sf */
			if (regnum(&r, &reg))
				set(w, reg, W_CFAREL, sleb(&r) * c->data_align);
			break;
		case 0x12: /* DW_CFA_def_cfa_sf */
			if (regnum(&r, &reg)) {
				w->cfa_kind = CFA_REG;
				w->cfa_reg = (uint8_t)reg;
				w->cfa_off = sleb(&r) * c->data_align;
			}
			break;
		case 0x13: /* DW_CFA_def_cfa_offset_sf */
			s = sleb(&r);
			w->cfa_off = s * c->data_align;
			break;
		case 0x2e: /* DW_CFA_GNU_args_size */
			uleb(&r);
			break;
		default: /* set_loc, val_offset, vendor operations, ... */
			return false;
		}
		if (r.bad)
			return false;
	}
	return !r.bad;
}

/* The rule for row w, as libunwind's tdep_stash_frame would judge it. */
static void classify(const struct row *w, struct mt_cfi_rule *rule)
{
	int64_t rsp_off = w->off[1], rbp_off = w->off[0];

	if (w->cfa_kind != CFA_REG ||
	    (w->cfa_reg != REG_RSP && w->cfa_reg != REG_RBP) ||
	    w->cfa_off <= -CFA_LIMIT || w->cfa_off >= CFA_LIMIT)
		return;
	/* libunwind evaluates every expression when it steps (and may fail
	 * there); a register kept in another register is not standard. */
	for (int i = 0; i < NREGS; i++)
		if (w->where[i] == W_EXPR)
			return;
	if (w->where[REG_RBP] == W_REG || w->where[REG_RSP] == W_REG ||
	    w->where[REG_RA] == W_REG)
		return;
	if (w->where[REG_RSP] == W_CFAREL &&
	    (rsp_off <= -OFF_LIMIT || rsp_off >= OFF_LIMIT || rsp_off == -1))
		return;
	/* An undefined return address or rbp ends the chain (x86-64 ABI):
	 * libunwind's unw_step returns 0 there. */
	if (w->where[REG_RA] == W_UNDEF || w->where[REG_RBP] == W_UNDEF) {
		rule->how = MT_CFI_LAST;
		return;
	}
	if (w->where[REG_RA] != W_CFAREL || w->off[2] != -8)
		return;
	uint8_t how = w->cfa_reg == REG_RBP ? MT_CFI_RBP_BASE : 0;
	if (w->where[REG_RBP] == W_CFAREL) {
		/* libunwind takes |offset| < 2^14; ours stay just below
		 * the CFA (push rbp, or a few pushes before it): the rest
		 * is left to libunwind. */
		if (rbp_off < MT_CFI_RBP_OFF_MIN || rbp_off > -8)
			return;
		how |= MT_CFI_RBP_SAVED;
		rule->rbp_off = (int16_t)rbp_off;
	}
	rule->cfa_off = (int32_t)w->cfa_off;
	rule->how = how;
}

void mt_cfi_rule_for(uintptr_t pc, bool after_call, struct mt_cfi_rule *rule,
		     struct mt_cfi_gen *gen)
{
	struct find f = { .ip = pc - (after_call ? 1 : 0) };
	struct cie c;
	struct row init, w;
	uintptr_t start;
	const uint8_t *instr, *end, *fde;

	rule->how = MT_CFI_SLOW;
	rule->cfa_off = 0;
	rule->rbp_off = 0;
	dl_iterate_phdr(find_object, &f);
	gen->adds = f.counted ? f.gen.adds : 0;
	gen->subs = f.counted ? f.gen.subs : ~0ull;
	if (!f.counted || !f.hdr || !(fde = search_table(&f)) ||
	    !parse_fde(fde, f.ip, &c, &start, &instr, &end))
		return;
	memset(&init, 0, sizeof(init)); /* W_SAME everywhere, no CFA */
	if (!run(c.instr, c.end, &c, 0, UINTPTR_MAX, &init, NULL))
		return;
	w = init;
	if (run(instr, end, &c, start, f.ip, &w, &init))
		classify(&w, rule);
}

void mt_cfi_gen_now(struct mt_cfi_gen *gen)
{
	struct find f = { .first_only = true };

	dl_iterate_phdr(find_object, &f);
	gen->adds = f.counted ? f.gen.adds : 0;
	gen->subs = f.counted ? f.gen.subs : ~0ull;
}
