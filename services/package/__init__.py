"""Package: the packages that drones carry, and their weight per owner."""
