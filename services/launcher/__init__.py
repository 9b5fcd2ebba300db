"""Runs the whole system as local processes: what `make run` starts and the e2e tests drive."""
