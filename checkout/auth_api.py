"""HTTP routes for signing in and for managing accounts and device keys.

Sign-in answers with a bearer token and sets the same token as an HttpOnly,
SameSite=Strict cookie for the web app. Shoppers register themselves;
staff accounts and device keys are made by an admin.

>>> from fastapi import FastAPI
>>> from fastapi.testclient import TestClient
>>> book = AccountBook(":memory:")
>>> app = FastAPI(); app.include_router(auth_router(book, Access(book, "s1")))
>>> client = TestClient(app)
>>> ana = {"username": "ana", "password": "long enough pw"}
>>> client.post("/auth/register", json=ana).status_code
201
>>> client.get("/me").json()["role"]  # the cookie from registering signs her in
'shopper'
"""

# No `from __future__ import annotations`: FastAPI must see the dependencies of closures.
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from checkout.access import COOKIE, Access
from checkout.auth import AccountBook, AccountError, Principal, Role, SignInThrottledError

__all__ = ["auth_router"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Credentials(_Strict):
    username: str = Field(min_length=2, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class Registration(Credentials):
    display_name: str | None = Field(default=None, max_length=64)


class NewAccount(Registration):
    role: Role
    stores: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=200
    )


class NewDeviceKey(_Strict):
    store_id: str | None = Field(default=None, max_length=64, description="Default: this store.")


def auth_router(book: AccountBook, access: Access) -> APIRouter:
    """Sign-in, registration, ``/me``, and the admin's accounts and device keys."""
    router = APIRouter(tags=["auth"])
    admin = Depends(access.require("admin", store_scoped=False))

    def signed_in(response: Response, username: str, password: str) -> dict[str, Any]:
        try:
            issued = book.sign_in(username, password)
        except SignInThrottledError as exc:
            retry = str(max(1, int(exc.retry_after_s)))
            raise HTTPException(429, str(exc), headers={"Retry-After": retry}) from None
        if issued is None:
            raise HTTPException(401, "wrong username or password")
        token, expires_s = issued
        who = book.principal_for(token)
        assert who is not None  # just issued
        response.set_cookie(
            COOKIE,
            token,
            max_age=int(book.token_ttl_s),
            httponly=True,
            samesite="strict",
            path="/",
        )
        return {"token": token, "expires_at_s": expires_s, "account": who.public()}

    @router.post("/auth/login")
    def login(body: Credentials, response: Response) -> dict[str, Any]:
        """Sign in; the token comes back in the body and as a cookie."""
        return signed_in(response, body.username, body.password)

    @router.post("/auth/register", status_code=201)
    def register(body: Registration, response: Response) -> dict[str, Any]:
        """Open a shopper account, signed in at once."""
        try:
            book.create_account(
                body.username, body.password, role="shopper", display_name=body.display_name
            )
        except AccountError as exc:
            raise HTTPException(422, str(exc)) from None
        return signed_in(response, body.username, body.password)

    @router.post("/auth/logout", status_code=204)
    def logout(request: Request, who: Annotated[Principal, Depends(access.principal)]) -> Response:
        """Revoke the token in use and clear the cookie."""
        del who  # only to insist on a valid sign-in
        secret = access.credential(request)
        if secret is not None:
            book.sign_out(secret)
        done = Response(status_code=204)
        done.delete_cookie(COOKIE, path="/")
        return done

    @router.get("/me")
    def me(who: Annotated[Principal, Depends(access.principal)]) -> dict[str, object]:
        """The signed-in account: role and stores."""
        return who.public()

    @router.get("/accounts", dependencies=[admin])
    def accounts() -> list[dict[str, object]]:
        return [p.public() for p in book.accounts()]

    @router.post("/accounts", status_code=201, dependencies=[admin])
    def create(body: NewAccount) -> dict[str, object]:
        try:
            made = book.create_account(
                body.username,
                body.password,
                role=body.role,
                stores=body.stores,
                display_name=body.display_name,
            )
        except AccountError as exc:
            raise HTTPException(422, str(exc)) from None
        return made.public()

    @router.delete("/accounts/{account_id}", status_code=204, dependencies=[admin])
    def disable(account_id: str) -> Response:
        if not book.disable(account_id):
            raise HTTPException(404, f"no account {account_id!r}; list them at GET /accounts")
        return Response(status_code=204)

    @router.post("/devices/{device_id}/keys", status_code=201, dependencies=[admin])
    def device_key(device_id: str, body: NewDeviceKey) -> dict[str, str]:
        """A new key for a device; shown once, keep it on the device."""
        store_id = body.store_id or access.store_id
        return {
            "device_id": device_id,
            "store_id": store_id,
            "key": book.issue_device_key(device_id, store_id),
        }

    return router
