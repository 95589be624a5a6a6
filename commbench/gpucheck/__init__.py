"""`make gpu-check`: what only a GPU can show, checked on 1 to 8 CUDA GPUs in minutes.

Run it first on a GPU machine (README, "What was verified where"). It needs the torch
already installed and commbench's other dependencies, no network, no venv; the repo on
PYTHONPATH. Each check starts real commbench sweeps (or, for the device peak, uses the
allocator directly) and prints one table row: check, expected, measured, verdict.
Exit 0 only if every check passes; 1 if any fails or could not run; 2 without a GPU.

    PYTHONPATH=. python3 -m commbench.gpucheck [--nccl-lib /path/to/libnccl.so.2]

Its rooms: `verdict` (a check's row, the table, the exit code), `judge` (what a run's
files must hold: pure, tested on CPU), `ranks` (starting sweeps' ranks the way srun
does), `checks` (each check), `__main__` (which checks run on this machine).
"""
