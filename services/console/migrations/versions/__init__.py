"""The console's migrations, oldest first; Alembic loads them by path."""
