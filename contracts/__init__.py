"""Contracts shared by keyledger services: envelopes, events, subjects, streams, replies."""
