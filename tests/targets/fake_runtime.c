/* A shared object that looks like a libpython to the detector: it defines
 * _PyRuntime.  Built as libpython3.5m.so (too old) and libpython3.13t.so
 * (free-threaded) for the unsupported-interpreter tests. */
char _PyRuntime[1024] = "not a runtime";
