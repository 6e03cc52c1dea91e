"""The Slurm backend: runs as batch jobs on a Slurm cluster (see backend.py)."""
