"""Alembic environment of the notifier service: migrates the connection migrate.py hands over."""

from services.common.migrate import run_env
from services.notifier.store import metadata

run_env(metadata)
