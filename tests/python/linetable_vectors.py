"""Line-table test vectors, computed by the interpreter that runs this file.

Prints, for every code object compiled from SOURCE (nested ones too):

    code FIRSTLINENO TABLE_HEX
    at OFFSET LINE          (one per instruction; LINE -1: no line)

OFFSET is what fh-bpf's decoder for this version takes: a byte offset up to
3.10, a code-unit index from 3.11.  The lines come from the interpreter's
own API (dis.findlinestarts up to 3.9, co_lines() in 3.10, co_positions()
from 3.11), so the decoder is checked against CPython itself.
"""
import dis
import sys

SOURCE = '''
import os

def simple(a, b):
    x = a + b
    return x

def loops(n):
    total = 0
    for i in range(n):
        if i % 2:
            total += i
        else:
            total -= 1
    while n > 0:
        n -= 1
    return total

def multi_line(a,
               b):
    return (a +
            b +
            [i for i in range(3)][0])

class C:
    @staticmethod
    def deco():
        try:
            raise ValueError("x")
        except ValueError as e:
            return str(e)
        finally:
            pass

def far():
    a = 1
''' + '\n' * 300 + '''
    b = 2
''' + '\n' * 70000 + '''
    return a + b

def big(n):
''' + ''.join('    n = n + %d\n' % i for i in range(400)) + '''
    return n

async def coro():
    return 1

def gen():
    yield 1
    yield 2
'''


def walk(code):
    yield code
    for const in code.co_consts:
        if hasattr(const, 'co_code'):
            for c in walk(const):
                yield c


def table(code):
    if sys.version_info >= (3, 10):
        return code.co_linetable
    return code.co_lnotab


def lines(code):
    if sys.version_info >= (3, 11):
        for index, pos in enumerate(code.co_positions()):
            yield index, -1 if pos[0] is None else pos[0]
    elif sys.version_info >= (3, 10):
        for start, end, line in code.co_lines():
            for offset in range(start, end, 2):
                yield offset, -1 if line is None else line
    else:
        starts = dict(dis.findlinestarts(code))
        line = code.co_firstlineno
        for offset in range(0, len(code.co_code), 2):
            line = starts.get(offset, line)
            yield offset, line


def main():
    module = compile(SOURCE, 'vectors.py', 'exec')
    out = []
    for code in walk(module):
        out.append('code %d %s' % (code.co_firstlineno, table(code).hex()))
        for offset, line in lines(code):
            out.append('at %d %d' % (offset, line))
    sys.stdout.write('\n'.join(out) + '\n')


main()
