"""Reading results: the run summary, serving scenarios, compare, the gate, priors and
statistics. Pure functions of data: never imports torch or `commbench.sweep`."""
