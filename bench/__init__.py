"""The benchmarks, run from the repository root as modules of the installed project
(`python -m bench.NAME`); their figures, and how they were taken, are in docs/benchmarks.md."""
