"""CPython's own Lib/test/test_faulthandler.py, judging fh-bpf.

    PYTHON faulthandler_suite.py --fh-bpf PATH [--test-dir DIR]

Run by the interpreter under test (as root): it loads that interpreter's own
test_faulthandler (from DIR/test when given: a build that ships none, such
as Debian's, borrows the same minor version's) and runs its test case with
one change: each child process the tests start runs under fh-bpf instead of
its own faulthandler, and the output the test's own regexes and equalities
judge is fh-bpf's.  The child's faulthandler calls become fh-bpf's options,
on the same lines (the regexes name line numbers):

  enable(), enable(file)          fh-bpf -- PYTHON -c CODE (launch mode):
                                  the crash is caught watching
  dump_traceback(all_threads=True) the child says so and waits; fh-bpf -p PID
                                  --dump prints its threads at that point
  dump_traceback_later(t, repeat) fh-bpf --timeout t [--repeat] -- ...
  register(signum)                fh-bpf --signal signum -- ...; the child
                                  gets a handler that does nothing, as the
                                  one faulthandler installs (it would
                                  otherwise die of the signal)

Where the child wrote (a file, a descriptor, stderr) does not matter: fh-bpf
writes to -o FILE, and that is the output returned to the test.  Anything
the child itself writes on stdout or stderr fails the case.

Cases that cannot apply are reported "not applicable" with the reason (see
NOT_APPLICABLE and the rules in translate()); the test's own skips stay
"skipped" with theirs.  The result is one JSON object on stdout:
{"python", "test_file", "cases": [{"name", "outcome", "detail"}]}, outcome
one of passed, failed, error, not applicable, skipped.
"""
import argparse
import ast
import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import traceback
import unittest

# Reasons, one per rule.
ALL_THREADS_FALSE = ("all_threads=False: faulthandler's one-thread format "
                     "('Stack (most recent call first):'); fh-bpf prints every thread")
DISABLE = "faulthandler.disable(): fh-bpf, watching, reports every fatal signal"
FATAL_ERROR = ("Py_FatalError(): the interpreter writes its own message ('Fatal Python "
               "error: <function>: <message>') before it aborts; fh-bpf sees the SIGABRT "
               "that follows, not the message")
DESCRIPTOR = ("enable(fd): a descriptor of the child's own; fh-bpf writes to its stderr "
              "or -o FILE")
CANCEL = ("cancel_dump_traceback_later() before the timeout: fh-bpf's --timeout cannot be "
          "cancelled from inside the target")
LOOPS = ("dump_traceback_later() armed again after a cancel: fh-bpf's --timeout is armed "
         "once, when the command starts")
UNREGISTER = ("faulthandler.unregister(): fh-bpf's --signal cannot be withdrawn from inside "
              "the target (a target that does not handle the signal is dumped, then dies)")
CHAIN = ("chain=True: fh-bpf never replaces the target's handler, so whether a previous "
         "handler runs is the target's own business")

# Cases that check faulthandler's in-process API, not a traceback.
NOT_APPLICABLE = {
    'test_is_enabled': "faulthandler.is_enabled() in-process: no traceback",
    'test_disabled_by_default': "faulthandler's default state: no traceback",
    'test_sys_xoptions': "-X faulthandler: no traceback",
    'test_env_var': "PYTHONFAULTHANDLER: no traceback",
    'test_stderr_None': "sys.stderr None in-process: no traceback",
}

DUMP_MARK = 'fh-bpf-suite: dump here'
GUARD_S = 60


class NotApplicable(unittest.SkipTest):
    pass


def na(reason):
    raise NotApplicable('not applicable: ' + reason)


def calls(code, name):
    """(start, end, arguments) of each call faulthandler.NAME(...) in code."""
    for m in re.finditer(r'\bfaulthandler\.%s\(' % name, code):
        depth, i = 1, m.end()
        while depth and i < len(code):
            depth += {'(': 1, ')': -1}.get(code[i], 0)
            i += 1
        yield m.start(), i, code[m.end():i - 1]


def replace_calls(code, name, expression):
    """Each call faulthandler.NAME(...) replaced by expression(arguments),
    on as many lines as the call took."""
    for start, end, args in reversed(list(calls(code, name))):
        new = expression(args)
        lines = code[start:end].count('\n')
        if lines:
            new = '(' + new + '\n' * lines + ')'
        code = code[:start] + new + code[end:]
    return code


def literal(code, name, default=None):
    """The value a line "NAME = literal" of code gives NAME."""
    m = re.search(r'^%s = (.+)$' % re.escape(name), code, re.M)
    return ast.literal_eval(m.group(1)) if m else default


def keyword(code, args, name, default):
    """A keyword argument's value: a literal, or a variable set to one."""
    m = re.search(r'\b%s=(\w+)' % name, args)
    if not m:
        return default
    try:
        return ast.literal_eval(m.group(1))
    except ValueError:
        return literal(code, m.group(1), default)


def translate(code):
    """(code, fh-bpf options, dumps): the child's faulthandler calls made
    fh-bpf's, each on its own lines; raises NotApplicable."""
    if re.search(r'\bfaulthandler\.disable\(', code):
        na(DISABLE)
    if re.search(r'\bfaulthandler\._fatal_error(_c_thread)?\(|_testcapi\.fatal_error\(', code):
        na(FATAL_ERROR)
    options = []
    dumps = [False]

    def enable(args):
        if keyword(code, args, 'all_threads', True) is False:
            na(ALL_THREADS_FALSE)
        if re.match(r'\s*\d', args):
            na(DESCRIPTOR)
        return 'None'

    def dump(args):
        if keyword(code, args, 'all_threads', True) is False:
            na(ALL_THREADS_FALSE)
        dumps[0] = True
        return ("(__import__('sys').stdout.write(%r + '\\n'), __import__('sys').stdout.flush(), "
                "__import__('sys').stdin.readline())" % DUMP_MARK)

    def later(args):
        if literal(code, 'cancel', False):
            na(CANCEL)
        if literal(code, 'loops', 1) != 1:
            na(LOOPS)
        timeout = literal(code, 'timeout', None)
        if timeout is None:
            timeout = ast.literal_eval(args.split(',')[0].strip())
        options.extend(['--timeout', str(timeout)])
        if keyword(code, args, 'repeat', False):
            options.append('--repeat')
        if keyword(code, args, 'exit', False):
            options.append('--exit')
        return 'None'

    def register(args):
        if keyword(code, args, 'all_threads', True) is False:
            na(ALL_THREADS_FALSE)
        if keyword(code, args, 'chain', False):
            na(CHAIN)
        if literal(code, 'unregister', False):
            na(UNREGISTER)
        signum = args.split(',')[0].strip()
        number = literal(code, signum, None) if re.match(r'^\w+$', signum) else None
        if not isinstance(number, int):
            number = int(eval(signum, {'signal': __import__('signal')}))
        options.extend(['--signal', str(number)])
        return "__import__('signal').signal(%s, lambda *args: None)" % signum

    code = replace_calls(code, 'enable', enable)
    code = replace_calls(code, 'dump_traceback', dump)
    code = replace_calls(code, 'dump_traceback_later', later)
    code = replace_calls(code, 'cancel_dump_traceback_later', lambda args: 'None')
    code = replace_calls(code, 'register', register)
    code = replace_calls(code, 'unregister', lambda args: 'None')
    return code, options, dumps[0]


def run_child(fh_bpf, code, options, dumps, out):
    """The child run as translated; (its stdout, its stderr, its status)."""
    child = [sys.executable, '-E', '-c', code]
    if not dumps:
        p = subprocess.run([fh_bpf, '-o', out] + options + ['--'] + child,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=GUARD_S)
        return p.stdout, p.stderr, p.returncode
    # dump_traceback(): fh-bpf --dump where the child waits.
    p = subprocess.Popen(child, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    stdout = b''
    for line in p.stdout:
        if line.decode('ascii', 'replace').rstrip('\n') != DUMP_MARK:
            stdout += line
            continue
        subprocess.run([fh_bpf, '-p', str(p.pid), '--dump', '-o', out],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=GUARD_S, check=True)
        p.stdin.write(b'\n')
        p.stdin.flush()
    stderr = p.stderr.read()
    return stdout, stderr, p.wait(timeout=GUARD_S)


def parity_case(base, fh_bpf):
    """base (FaultHandlerTests) with its children run under fh-bpf."""

    class Parity(base):
        def get_output(self, code, filename=None, fd=None):
            code, options, dumps = translate(textwrap.dedent(code).strip())
            out = tempfile.mktemp(prefix='fh-suite-')
            try:
                stdout, stderr, status = run_child(fh_bpf, code, options, dumps, out)
                with open(out, 'rb') if os.path.exists(out) else open(os.devnull, 'rb') as f:
                    text = f.read().decode('ascii', 'backslashreplace')
            finally:
                if os.path.exists(out):
                    os.unlink(out)
            own = [l for l in stderr.decode('ascii', 'backslashreplace').splitlines()
                   if not l.startswith('fh-bpf: ')]
            if stdout or own:
                self.fail('the child wrote %r on stdout and %r on stderr' % (stdout, own))
            # fh-bpf's own lines (losses) are not faulthandler's.
            lines = [l for l in text.splitlines() if not l.startswith('fh-bpf: ')]
            # Launch mode exits as the child did (128 + N for signal N).
            return lines, status

    for name, reason in NOT_APPLICABLE.items():
        if hasattr(Parity, name):
            setattr(Parity, name, lambda self, r=reason: na(r))
    return Parity


class Results(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.cases = []

    def _add(self, test, outcome, detail=''):
        self.cases.append({'name': test.id().rsplit('.', 1)[-1], 'outcome': outcome,
                           'detail': detail})

    def addSuccess(self, test):
        self._add(test, 'passed')

    def addFailure(self, test, err):
        self._add(test, 'failed', ''.join(traceback.format_exception_only(*err[:2])))

    def addError(self, test, err):
        if isinstance(err[1], NotApplicable):
            return self.addSkip(test, str(err[1]))
        self._add(test, 'error', ''.join(traceback.format_exception(*err))[-3000:])

    def addSkip(self, test, reason):
        if reason.startswith('not applicable: '):
            self._add(test, 'not applicable', reason[len('not applicable: '):])
        else:
            self._add(test, 'skipped', reason)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--fh-bpf', required=True)
    ap.add_argument('--test-dir', help="a directory holding the package 'test' to use")
    ap.add_argument('tests', nargs='*', help='only these test methods')
    args = ap.parse_args()
    if args.test_dir:
        # Only the package 'test' from there: the rest of the standard
        # library stays this interpreter's.
        shim = tempfile.mkdtemp(prefix='fh-suite-path-')
        os.symlink(os.path.join(args.test_dir, 'test'), os.path.join(shim, 'test'))
        atexit.register(shutil.rmtree, shim)
        sys.path.insert(0, shim)
    from test import test_faulthandler
    case = parity_case(test_faulthandler.FaultHandlerTests, os.path.abspath(args.fh_bpf))
    loader = unittest.defaultTestLoader
    suite = (unittest.TestSuite(case(name) for name in args.tests) if args.tests
             else loader.loadTestsFromTestCase(case))
    results = Results()
    suite.run(results)
    json.dump({'python': sys.version.split()[0], 'test_file': test_faulthandler.__file__,
               'cases': results.cases}, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
