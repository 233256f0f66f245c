/*
 * Test target: dereferences NULL first thing in main, about a millisecond
 * after its exec, before it starts a thread or opens a file.
 *
 *   instant_crash
 *
 * tests/e2e/test_tree.cpp runs it as the child of a shell that forks it
 * (`sh -c 'instant_crash; true'`): a descendant armed only by the kernel's
 * fork and exec events, which has no time to be found any other way.
 * The faulting line carries the marker comment "@instant".
 */
/* Volatile: the compiler may neither fold the store nor drop it. */
static volatile int *volatile nowhere;

int main(void)
{
	*nowhere = 1; /* @instant */
	return 0;
}
