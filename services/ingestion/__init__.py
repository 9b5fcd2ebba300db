"""Ingestion: accepts delivery requests and answers 202 once they are durably queued."""
