"""One visitor of the running console over real HTTP: its cookie jar, the CSRF token of the last
page it saw, no redirects followed (the tests look at each one)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import httpx

from tests.e2e.conftest import PASSWORD

if TYPE_CHECKING:
    from types import TracebackType

CSRF = re.compile(r'name="csrf" value="([^"]*)"')
COOKIE = "keyledger_console"


class Visitor:
    def __init__(self, base_url: str, address: str = "127.0.0.1") -> None:
        # the source address matters: failed sign-ins are counted per client address too
        transport = httpx.HTTPTransport(local_address=address)
        self.http = httpx.Client(base_url=base_url, transport=transport, timeout=15)
        self.csrf = ""
        self.seen: list[httpx.Response] = []

    def __enter__(self) -> Visitor:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.http.close()

    def get(self, path: str) -> httpx.Response:
        return self._seen(self.http.get(path))

    def post(
        self, path: str, data: dict[str, str] | None = None, *, csrf: str | None = None
    ) -> httpx.Response:
        body = dict(data or {})
        token = self.csrf if csrf is None else csrf
        if token:  # csrf="" sends no token at all
            body["csrf"] = token
        return self._seen(self.http.post(path, data=body))

    def set_password(self, link: str, password: str = PASSWORD) -> httpx.Response:
        path = httpx.URL(link).path
        assert self.get(path).status_code == 200
        return self.post(path, {"password": password, "repeat": password})

    def sign_in(self, user: str, password: str = PASSWORD) -> httpx.Response:
        self.get("/signin")
        done = self.post("/signin", {"user": user, "password": password, "next": "/"})
        if done.status_code == 303:
            self.get("/profile")  # as a browser lands on a page: the new session's token
        return done

    def sudo(self, password: str = PASSWORD) -> httpx.Response:
        self.get("/sudo")
        done = self.post("/sudo", {"password": password, "next": "/profile"})
        assert done.status_code == 303, done.text
        self.get("/profile")
        return done

    def session(self) -> str | None:
        return self.http.cookies.get(COOKIE)

    def _seen(self, response: httpx.Response) -> httpx.Response:
        self.seen.append(response)
        if found := CSRF.search(response.text):
            self.csrf = found.group(1)
        return response
