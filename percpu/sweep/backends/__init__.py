"""Where points run: local (a process pool on this machine) or slurm (job arrays)."""
