"""The CI regression gate: a current run (or reruns of it) judged against one baseline run
or a history, on the spread between runs; pure functions of result directories.

- judge.py: which rows are compared, every row's and aggregate's figures (run_gate);
- model.py: the three tests (overall, collective, row) and the spread each is judged on;
- power.py: the smallest shift each test catches 9 times in 10, and the runs that would
  bring it down to the asked shift;
- priors.py (+ priors.toml): the between-run spread measured per backend, as data;
- verdict.py: the one status ladder, the statuses' order and the exit code;
- rules.py: per-row tolerances from a rules file; history.py: the rolling history;
- medians.py: each row's median in each run, the unit every test judges.
"""
