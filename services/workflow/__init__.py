"""Workflow: takes delivery requests off the queue and has package, drone scheduler and
delivery carry them out, in that order, retrying what is transient."""
