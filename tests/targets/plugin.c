/* Code the crash target loads with dlopen() after fh-bpf has attached. */
__attribute__((noinline)) void plugin_crash(volatile int *p)
{
	*p = 7; /* @plugin */
	__asm__ volatile("" ::: "memory");
}
