"""Delivery: the state of each delivery, and the tracking view clients read."""
