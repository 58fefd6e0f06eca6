"""Settings of the web console, from KEYLEDGER_* environment variables."""

from __future__ import annotations

from services.common.settings import ServiceSettings


class ConsoleSettings(ServiceSettings):
    db_url: str = "sqlite+aiosqlite:///.keyledger/console.db"
    host: str = "127.0.0.1"
    port: int = 8080
    # base of setup links and of the cookie's Secure flag; default http://host:port
    public_url: str | None = None
    # the FRONTENDS operator whose credentials the console uses (when none are given)
    operator: str = "console"
    session_idle_seconds: int = 1800
    session_absolute_seconds: int = 43200
    sudo_seconds: int = 600
    setup_link_seconds: int = 86400
    max_failed_signins: int = 10
    signin_lockout_seconds: int = 900

    def base_url(self) -> str:
        """Where people reach the console: public_url, else http://host:port."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def secure_cookies(self) -> bool:
        return self.base_url().startswith("https://")
