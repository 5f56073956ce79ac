"""Helpers shared by the test suites and the benchmark scripts."""
