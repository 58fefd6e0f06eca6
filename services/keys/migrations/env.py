"""Alembic environment of the keys service: migrates the connection migrate.py hands over."""

from services.common.migrate import run_env
from services.keys.store import metadata

run_env(metadata)
