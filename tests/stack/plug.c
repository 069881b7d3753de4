/* plug: loaded by `stackprog dlopen` after start-up; plug_call recurses in
 * here before calling back, so stacks cross this object's frames. */
__attribute__((noinline)) static void inner(int d, void (*cb)(int), int n)
{
	if (n > 0)
		inner(d, cb, n - 1);
	else
		cb(d);
	__asm__ volatile("" : : : "memory");
}

__attribute__((visibility("default"))) void plug_call(int d, void (*cb)(int),
						      void *decoy)
{
	(void)decoy;
	inner(d, cb, d % 4 + 1);
	__asm__ volatile("" : : : "memory");
}
