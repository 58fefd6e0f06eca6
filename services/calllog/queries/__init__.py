"""Read requests of the call log, each answered from its own tables inside the 7-day window."""
