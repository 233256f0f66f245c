"""fh-bpf's benchmarks: `python3 bench/fhbench run|report|list` (see cli.py)."""

import os
import sys

sys.dont_write_bytecode = True  # nothing left in the tree
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fhbench.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
