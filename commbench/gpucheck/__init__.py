"""`make gpu-check`: what only a GPU can show, checked on 1 to 8 CUDA GPUs in under 8 minutes.

Run it first on a GPU machine (docs/gpu.md). It needs the torch already installed and
commbench's other dependencies, no network, no venv; the repo on PYTHONPATH. It says first,
in one line, which modules are missing and how to carry them; then which versions it found.
Each check starts real commbench sweeps (or, for the graph replay and the bare loop, short
scripts of commbench's own parts) within its own time limit and judges their files. On one
GPU, the checks that need ranks run two ranks sharing it. The tables at the end say each
check's status (PASS, FAIL, N/A, NOT RUN), what it proves and what it cannot here. Exit 0
when nothing failed and something passed; 1 otherwise; 2 when nothing could run (no GPU,
no torch, modules missing).

    PYTHONPATH=. python3 -m commbench.gpucheck [--nccl-lib LIB] [--keep DIR]

Its rooms: `preflight` (the modules, standard library only), `verdict` (statuses, tables,
exit code), `catalogue` (the steps' time limits, what each check proves), `judge` (what a
run's files must hold: pure, tested on CPU), `sweeps` (each check's config), `ranks`
(starting ranks the way srun does, logs kept), `checks`, `stopcheck`, `ncclcheck` (the
checks), `replay` (one rank of the graph replay check), `run` (which steps run here).
"""
