/* A shared object that looks like a libpython 3.11 to fh-bpf: the symbols
 * it places an interpreter by (_PyRuntime, Py_Version, PyModule_Type).  Built
 * as libpython3.11.so; hostile_py fills _PyRuntime with what it chooses. */
unsigned char _PyRuntime[4096] __attribute__((aligned(64)));
const unsigned int Py_Version = 0x030b07f0; /* 3.11.7 */
unsigned char PyModule_Type[512] __attribute__((aligned(64)));
