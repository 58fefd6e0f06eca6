"""The calllog service's migrations, oldest first; Alembic loads them by path."""
