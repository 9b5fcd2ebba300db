"""Chaos tests: the running system under load while its parts fail (see test_chaos.py)."""
