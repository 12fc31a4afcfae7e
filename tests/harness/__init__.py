"""Real services for tests and benchmarks, started on free loopback ports in temp folders."""
