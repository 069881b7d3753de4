/* swap: built twice (libswapa, libswapb) with the same code layout and
 * other frame sizes, for `stackprog reload`: B is loaded where A was, so
 * its plug_call returns to the very address A's did, under another rule.
 * B keeps `decoy` (a return address of the program) where A's rule would
 * find a return address: a walk with A's stale rule reports it. */
#ifndef FRAME
#error "FRAME (bytes below the return address) is required"
#endif
#define STR2(x) #x
#define STR(x) STR2(x)

void plug_call(int d, void (*cb)(int), void *decoy);

/* rdi = d, rsi = cb, rdx = decoy.  A: FRAME 24, DECOY 8 (a slot of its
 * own); B: FRAME 56, DECOY 24, where A's rule finds a return address
 * (CFA = rsp + 32).  Both displacements take one byte: same layout. */
__asm__(".text\n"
	".globl plug_call\n"
	".type plug_call,@function\n"
	"plug_call:\n"
	"\t.cfi_startproc\n"
	"\tsub $" STR(FRAME) ", %rsp\n"
	"\t.cfi_def_cfa_offset " STR(FRAME) " + 8\n"
	"\tmov %rdx, " STR(DECOY) "(%rsp)\n"
	"\tmov %rsi, %rax\n"
	"\tcall *%rax\n"
	"\tadd $" STR(FRAME) ", %rsp\n"
	"\t.cfi_def_cfa_offset 8\n"
	"\tret\n"
	"\t.cfi_endproc\n"
	".size plug_call, .-plug_call\n");
