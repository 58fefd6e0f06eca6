"""Deployment: NATS identities and permissions, accounts, the server config, compose."""
