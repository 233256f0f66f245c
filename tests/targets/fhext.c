/*
 * A C extension for the --native tests, built -O2 -g for each interpreter
 * by the tests (tests/e2e/test_native_python.cpp).  Each function goes through a few
 * levels of C, static and not inlined, so the native frames between the
 * Python ones are known; the "@name" marker lines are the oracle.
 *
 *   fhext.crash(n)       n levels of C, then a store through NULL
 *   fhext.call(f)        two levels of C, then f() called back
 *   fhext.block(fd)      two levels of C, the GIL released, read(fd) blocks
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static volatile int *volatile pixels; /* NULL: the crash */

NOINLINE static int blend_pixel(int row, int col)
{
	pixels[row * 64 + col] = row ^ col; /* @blend_pixel */
	return pixels[0];
}

NOINLINE static int process_row(int row, int depth)
{
	int r;

	if (depth > 0)
		r = process_row(row + 1, depth - 1); /* @process_row */
	else
		r = blend_pixel(row, 3); /* @process_row_last */
	__asm__ volatile("" ::: "memory");
	return r + 1;
}

static PyObject *fhext_crash(PyObject *self, PyObject *args)
{
	int depth = 0;

	if (!PyArg_ParseTuple(args, "i", &depth))
		return NULL;
	return PyLong_FromLong(process_row(0, depth)); /* @fhext_crash */
}

NOINLINE static PyObject *invoke(PyObject *f)
{
	PyObject *r = PyObject_CallObject(f, NULL); /* @invoke */
	__asm__ volatile("" ::: "memory");
	return r;
}

NOINLINE static PyObject *dispatch(PyObject *f)
{
	PyObject *r = invoke(f); /* @dispatch */
	__asm__ volatile("" ::: "memory");
	return r;
}

static PyObject *fhext_call(PyObject *self, PyObject *args)
{
	PyObject *f;

	if (!PyArg_ParseTuple(args, "O", &f))
		return NULL;
	return dispatch(f); /* @fhext_call */
}

NOINLINE static ssize_t wait_input(int fd, char *buf)
{
	ssize_t n = read(fd, buf, 1); /* @wait_input */
	__asm__ volatile("" ::: "memory");
	return n;
}

NOINLINE static ssize_t wait_unlocked(int fd)
{
	char c;
	ssize_t n;

	Py_BEGIN_ALLOW_THREADS
	n = wait_input(fd, &c); /* @wait_unlocked */
	Py_END_ALLOW_THREADS
	return n;
}

static PyObject *fhext_block(PyObject *self, PyObject *args)
{
	int fd;

	if (!PyArg_ParseTuple(args, "i", &fd))
		return NULL;
	return PyLong_FromSsize_t(wait_unlocked(fd)); /* @fhext_block */
}

static PyMethodDef fhext_methods[] = {
	{"crash", fhext_crash, METH_VARARGS, "store through NULL, n levels of C down"},
	{"call", fhext_call, METH_VARARGS, "call f back from C"},
	{"block", fhext_block, METH_VARARGS, "read a byte of fd, the GIL released"},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef fhext_module = {
	PyModuleDef_HEAD_INIT, "fhext", NULL, -1, fhext_methods,
};

PyMODINIT_FUNC PyInit_fhext(void)
{
	return PyModule_Create(&fhext_module);
}
