"""Drone scheduler: keeps a fleet and gives each delivery a drone and a time window."""
