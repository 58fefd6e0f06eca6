"""Alembic history of the keys service's tables (run by services.common.migrate)."""
