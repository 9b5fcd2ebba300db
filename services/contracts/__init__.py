"""What crosses a service boundary: the public route table, the queue's messages and the
shared vocabulary.

They are contracts, not shared code: changing one is changing an API.
"""
