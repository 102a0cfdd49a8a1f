"""HOW a run executes: the plan, the executor, one repetition's measurement, where server and generators
run (placement), server processes, /proc and ss sampling, the run directory (store, manifest)."""
