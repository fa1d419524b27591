"""Accounts over HTTP: sign-up, tokens, merchants, staff accounts, audit log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from tuangou.accounts import service
from tuangou.core.auth import Role
from tuangou.core.errors import Unauthorized
from tuangou.core.http import Auth, IdPath, Ops, ReadUoW, UoW
from tuangou.core.input import Body
from tuangou.core.ratelimit import request_address

router = APIRouter(prefix="/api/v1", tags=["accounts"])


class SignUp(Body):
    email: str = Field(max_length=200)
    password: str = Field(max_length=200)
    name: str = Field(default="", max_length=120)


class Credentials(Body):
    email: str = Field(max_length=200)
    password: str = Field(max_length=200)


class NewMerchant(Body):
    name: str = Field(min_length=1, max_length=120)
    owner_email: str = Field(max_length=200)
    owner_password: str = Field(max_length=200)
    reason: str = Field(default="", max_length=500)


class NewUser(Body):
    email: str = Field(max_length=200)
    password: str = Field(max_length=200)
    role: Role
    name: str = Field(default="", max_length=120)
    merchant_id: int | None = None
    reason: str = Field(default="", max_length=500)


class Deactivation(Body):
    reason: str = Field(min_length=1, max_length=500)


class PasswordChange(Body):
    current_password: str = Field(max_length=200)
    new_password: str = Field(max_length=200)


def log_in(request: Request, uow: Any, email: str, password: str) -> tuple[str, service.UserView]:
    """Log-in behind the per-account and per-address lockout (the consoles use it too)."""
    state = request.app.state
    address = request_address(request)
    state.login_guard.check(email, address)
    try:
        token, user = service.log_in(uow, email, password, state.keyring,
                                     timedelta(hours=state.settings.token_ttl_hours))
    except Unauthorized:
        state.login_guard.failed_attempt(email, address)
        raise
    state.login_guard.succeeded(email, address)
    return token, user


def _token(request: Request, uow: Any, email: str, password: str) -> dict[str, Any]:
    token, user = log_in(request, uow, email, password)
    return {"access_token": token, "token_type": "bearer", "user": user.__dict__}


@router.post("/auth/signup", status_code=201, summary="A buyer signs up and gets a token")
def sign_up(body: SignUp, request: Request, uow: UoW) -> dict[str, Any]:
    service.sign_up_buyer(uow, body.email, body.password, body.name)
    return _token(request, uow, body.email, body.password)


@router.post("/auth/token", summary="Exchange email and password for a bearer token")
def token(body: Credentials, request: Request, uow: ReadUoW) -> dict[str, Any]:
    return _token(request, uow, body.email, body.password)


@router.post("/auth/logout-all", status_code=204, summary="Revoke every token of the caller (log out everywhere)")
def log_out_everywhere(p: Auth, request: Request, uow: UoW) -> None:
    service.log_out_everywhere(uow, p)
    request.app.state.token_gate.forget(p.user_id)


@router.post("/me/password", status_code=204, summary="Change my password; every older token stops working")
def change_password(body: PasswordChange, p: Auth, request: Request, uow: UoW) -> None:
    service.change_password(uow, p, body.current_password, body.new_password)
    request.app.state.token_gate.forget(p.user_id)


@router.post("/users/{user_id}/deactivate", summary="Ops deactivate an account; its tokens stop working at once")
def deactivate_user(user_id: IdPath, body: Deactivation, p: Ops, request: Request, uow: UoW) -> dict[str, Any]:
    view = service.set_active(uow, p, user_id, False, body.reason)
    request.app.state.token_gate.forget(user_id)
    return view.__dict__


@router.post("/users/{user_id}/activate", summary="Ops reactivate an account (old tokens stay revoked)")
def activate_user(user_id: IdPath, body: Deactivation, p: Ops, request: Request, uow: UoW) -> dict[str, Any]:
    view = service.set_active(uow, p, user_id, True, body.reason)
    request.app.state.token_gate.forget(user_id)
    return view.__dict__


@router.get("/me")
def me(p: Auth, uow: ReadUoW) -> dict[str, Any]:
    return service.get_user(uow, p.user_id).__dict__


@router.post("/merchants", status_code=201, summary="Ops onboard a merchant with its first login")
def create_merchant(body: NewMerchant, p: Ops, uow: UoW) -> dict[str, Any]:
    merchant_id, user = service.create_merchant(uow, p, body.name, body.owner_email, body.owner_password,
                                                body.reason)
    return {"id": merchant_id, "name": body.name, "owner": user.__dict__}


@router.get("/merchants")
def list_merchants(_: Ops, uow: ReadUoW) -> dict[str, Any]:
    return {"items": service.list_merchants(uow), "next_cursor": None}


@router.post("/users", status_code=201, summary="Ops create staff, merchant, leader or supplier accounts")
def create_user(body: NewUser, p: Ops, uow: UoW) -> dict[str, Any]:
    return service.create_user(uow, p, body.email, body.password, body.role, body.name, body.merchant_id,
                               body.reason).__dict__


@router.get("/audit", summary="The ops audit log, newest first")
def audit_log(_: Ops, uow: ReadUoW, cursor: int | None = None,
              limit: int = Query(50, ge=1, le=500), action: str | None = None) -> dict[str, Any]:
    items = service.audit_log(uow, cursor=cursor, limit=limit, action=action)
    return {"items": items, "next_cursor": str(items[-1]["id"]) if len(items) == limit else None}
