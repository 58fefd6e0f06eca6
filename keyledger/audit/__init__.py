"""Audit: read a stream and verify its hash chains; export the message contracts."""
