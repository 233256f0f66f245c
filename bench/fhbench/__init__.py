"""fh-bpf's benchmarks as a program: one module per figure (figures/), the
processes, pipes and targets they share (procs), statistics (stats),
results as JSON (results) and the README's table rendered from them
(report).  Python 3 standard library only."""
