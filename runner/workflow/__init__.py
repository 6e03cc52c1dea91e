"""Multi-step workflows and sweeps: DAGs of project runs with a step cache, under a parent run."""
