"""The keys service: accounts, super-admins, keys, the vault, verification and the audit log."""
