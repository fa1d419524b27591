"""Benchmarks: the flash-sale load test and the governance tick timer (`tuangou bench ...`)."""
