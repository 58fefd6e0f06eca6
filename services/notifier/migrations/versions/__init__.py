"""The notifier service's migrations, oldest first; Alembic loads them by path."""
