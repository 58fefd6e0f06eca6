"""Plumbing every service uses the same way: stream declaration, pull projections, SQL helpers."""
