"""What every service needs identically: settings, health, logging, retries, stores, queues.

Nothing domain-specific lives here; a rule that two services share is a contract (a schema).
"""
