"""Alembic history of the calllog service's tables (run by services.common.migrate)."""
