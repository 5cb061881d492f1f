"""Load tests (locust scenarios, later) and the benchmark runner behind `make bench`."""
