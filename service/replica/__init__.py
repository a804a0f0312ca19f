"""Keeping this replica's in-memory list in step with the shared store."""
