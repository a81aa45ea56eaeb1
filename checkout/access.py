"""Who may call what: FastAPI dependencies that turn a request into a :class:`Principal`.

A request carries its credential as ``Authorization: Bearer ...`` (scripts,
devices) or as the ``smartstore_session`` cookie (the web app, whose
EventSource cannot set headers; the cookie is HttpOnly and SameSite=Strict,
so another site's page cannot spend it). No credential, or one that is
expired or unknown, is 401; a valid one of the wrong role, or for a store
its account does not cover, is 403. Neither says anything about the thing
asked for. Routes that hold one shopper's data answer a different shopper
with 404, exactly as if it did not exist, so ids cannot be probed.
"""

# No `from __future__ import annotations`: FastAPI must see the dependencies of closures.
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from checkout.auth import AccountBook, Principal, Role

__all__ = ["COOKIE", "STAFF", "Access"]

COOKIE = "smartstore_session"
STAFF: tuple[Role, ...] = ("manager", "loss_prevention", "admin")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class Access:
    """The dependencies of one store's app, over one account book."""

    def __init__(self, book: AccountBook, store_id: str) -> None:
        self.book = book
        self.store_id = store_id

    def credential(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return request.cookies.get(COOKIE)

    def principal(self, request: Request) -> Principal:
        """The caller, or 401."""
        secret = self.credential(request)
        if secret is None:
            raise HTTPException(401, "sign in first: POST /auth/login", headers=_CHALLENGE)
        found = self.book.principal_for(secret)
        if found is None:
            raise HTTPException(
                401, "your sign-in has expired or is not valid: sign in again", headers=_CHALLENGE
            )
        request.state.principal = found
        return found

    def require(
        self, *roles: Role, store_scoped: bool = True, admins: bool = True
    ) -> Callable[..., Principal]:
        """A dependency admitting ``roles`` (and admins, unless ``admins=False``).

        ``store_scoped``: staff and devices must also cover this store. A
        shopper is never store-scoped: any shopper may use any store.
        """
        allowed = set(roles) | ({"admin"} if admins else set())

        def dependency(
            who: Annotated[Principal, Depends(self.principal)],
        ) -> Principal:
            if who.role not in allowed:
                raise HTTPException(403, f"this needs the role {' or '.join(sorted(allowed))}")
            if store_scoped and who.role != "shopper" and not who.sees_store(self.store_id):
                raise HTTPException(403, f"your account does not cover store {self.store_id!r}")
            return who

        return dependency
