"""The web console: super-admins manage an account's API key in a browser (Starlette)."""
