"""`python -m commbench` and `torchrun -m commbench`."""

from commbench.cli import main

if __name__ == "__main__":
    main()
