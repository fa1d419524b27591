"""Accounts: sign-up, log-in, merchants and staff accounts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from tuangou.accounts import rules
from tuangou.accounts.models import Merchant, User
from tuangou.core.audit import list_entries, record_audit
from tuangou.core.auth import Keyring, Principal, Role, UserState, hash_password, issue_token, verify_password
from tuangou.core.db import InTransaction, UnitOfWork
from tuangou.core.errors import Conflict, NotFound, Unauthorized, ValidationFailed


@dataclass(frozen=True)
class UserView:
    id: int
    email: str
    name: str
    role: str
    merchant_id: int | None


def _view(u: User) -> UserView:
    return UserView(u.id, u.email, u.name, u.role, u.merchant_id)


def _add_user(uow: UnitOfWork, email: str, password: str, name: str, role: Role,
              merchant_id: int | None) -> User:
    problems = rules.check_credentials(email, password)
    if problems:
        raise ValidationFailed("; ".join(problems))
    user = User(email=email.lower(), name=name or email.split("@")[0], password_hash=hash_password(password),
                role=role.value, merchant_id=merchant_id, created_at=uow.now)
    uow.session.add(user)
    try:
        uow.session.flush()
    except IntegrityError as exc:
        raise Conflict(f"{email} is already registered", code="email_taken") from exc
    return user


def sign_up_buyer(uow: UnitOfWork, email: str, password: str, name: str = "") -> UserView:
    with uow:
        user = _add_user(uow, email, password, name, Role.BUYER, None)
        uow.commit()
        return _view(user)


def create_user(uow: UnitOfWork, actor: Principal | None, email: str, password: str, role: Role,
                name: str = "", merchant_id: int | None = None, reason: str = "") -> UserView:
    """Ops (or the CLI, actor None) create any account; a merchant user needs its merchant."""
    with uow:
        if role == Role.MERCHANT:
            if merchant_id is None or uow.session.get(Merchant, merchant_id) is None:
                raise ValidationFailed("a merchant account needs an existing merchant_id")
        else:
            merchant_id = None
        user = _add_user(uow, email, password, name, role, merchant_id)
        record_audit(uow.session, actor_id=actor.user_id if actor else None,
                     actor_role=actor.role.value if actor else "cli", action="create_user",
                     target=f"user:{user.id}", reason=reason or "account created", now=uow.now,
                     details={"role": role.value, "email": user.email})
        uow.commit()
        return _view(user)


def create_merchant(uow: UnitOfWork, actor: Principal | None, name: str, owner_email: str,
                    owner_password: str, reason: str = "") -> tuple[int, UserView]:
    """A merchant and its first login, in one transaction."""
    with uow:
        if not name.strip():
            raise ValidationFailed("merchant name is empty")
        merchant = Merchant(name=name.strip(), status=rules.MerchantStatus.ACTIVE, created_at=uow.now)
        uow.session.add(merchant)
        uow.session.flush()
        user = _add_user(uow, owner_email, owner_password, name, Role.MERCHANT, merchant.id)
        record_audit(uow.session, actor_id=actor.user_id if actor else None,
                     actor_role=actor.role.value if actor else "cli", action="create_merchant",
                     target=f"merchant:{merchant.id}", reason=reason or "merchant onboarded", now=uow.now)
        uow.commit()
        return merchant.id, _view(user)


def log_in(uow: UnitOfWork, email: str, password: str, keys: str | Keyring,
           ttl: timedelta) -> tuple[str, UserView]:
    """The same work and the same answer whether the email is unknown, inactive or the password wrong."""
    with uow:
        user = uow.session.scalar(select(User).where(User.email == email.strip().lower()))
        stored = user.password_hash if user is not None and user.active else None
        if not verify_password(password, stored) or user is None:
            raise Unauthorized("wrong email or password", code="invalid_credentials")
        principal = Principal(user.id, Role(user.role), user.merchant_id)
        return issue_token(principal, keys, uow.now, ttl, version=user.token_version), _view(user)


_ROLES = frozenset(r.value for r in Role)
# built once: every buyer's first request in a flash sale runs it (core.auth.TokenGate caches it after)
_STATE = (select(User.token_version, User.active, User.role, User.merchant_id)
          .where(User.id == bindparam("uid")))


_STATES = (select(User.id, User.token_version, User.active, User.role, User.merchant_id)
           .where(User.id.in_(bindparam("uids", expanding=True))))


def user_state(uow: UnitOfWork, user_id: int) -> UserState | None:
    """What decides whether a token still holds (core.auth.TokenGate loads it through this)."""
    with uow.db.read_engine.connect() as conn:
        row = conn.execute(_STATE, {"uid": user_id}).first()
    return None if row is None else _state(row)


def user_states(uow: UnitOfWork, user_ids: list[int]) -> dict[int, UserState]:
    """`user_state` of many users in one read (TokenGate batches the first requests of a crowd)."""
    with uow.db.read_engine.connect() as conn:
        rows = conn.execute(_STATES, {"uids": user_ids}).all()
    return {row.id: state for row in rows if (state := _state(row)) is not None}


def _state(row: Any) -> UserState | None:
    if row.role not in _ROLES:
        return None
    return UserState(row.token_version, bool(row.active), Role(row.role), row.merchant_id)


def _revoke(uow: UnitOfWork, user_id: int, **values: object) -> None:
    changed = uow.session.execute(update(User).where(User.id == user_id)
                                  .values(token_version=User.token_version + 1, **values)).rowcount  # type: ignore[attr-defined]
    if not changed:
        raise NotFound("no such user")


def set_active(uow: UnitOfWork, actor: Principal, user_id: int, active: bool, reason: str) -> UserView:
    """Ops deactivate (or reactivate) an account; its tokens stop working either way."""
    actor.require(Role.OPS)
    if not reason.strip():
        raise ValidationFailed("a reason is required", code="reason_required")
    if user_id == actor.user_id and not active:
        raise Conflict("ops cannot deactivate themselves", code="self_deactivation")
    with uow:
        _revoke(uow, user_id, active=active)
        record_audit(uow.session, actor_id=actor.user_id, actor_role=actor.role.value,
                     action="activate_user" if active else "deactivate_user", target=f"user:{user_id}",
                     reason=reason, now=uow.now)
        user = uow.session.get(User, user_id)
        assert user is not None
        view = _view(user)
        uow.commit()
        return view


def log_out_everywhere(uow: UnitOfWork, actor: Principal) -> None:
    """Every token of this user issued so far stops working."""
    with uow:
        _revoke(uow, actor.user_id)
        uow.commit()


def change_password(uow: UnitOfWork, actor: Principal, current: str, new: str) -> None:
    """With the current password; every older token stops working."""
    problems = rules.check_password(new)
    if problems:
        raise ValidationFailed("; ".join(problems))
    with uow:
        user = uow.session.get(User, actor.user_id)
        if not verify_password(current, user.password_hash if user is not None else None) or user is None:
            raise Unauthorized("wrong password", code="invalid_credentials")
        _revoke(uow, actor.user_id, password_hash=hash_password(new))
        uow.commit()


def get_user(uow: UnitOfWork, user_id: int) -> UserView:
    with uow:
        user = uow.session.get(User, user_id)
        if user is None:
            raise NotFound("no such user")
        return _view(user)


def merchant_status(uow: InTransaction, merchant_id: int) -> str:
    """Status of a merchant inside an open unit of work (other capabilities call this)."""
    merchant = uow.session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound("no such merchant")
    return merchant.status


def merchant_name(uow: UnitOfWork, merchant_id: int) -> str:
    """Inside an open unit of work: a merchant's name (reports anonymise it away)."""
    merchant = uow.session.get(Merchant, merchant_id)
    return merchant.name if merchant is not None else ""


def set_merchant_status(uow: InTransaction, merchant_id: int, status: rules.MerchantStatus) -> None:
    """Inside an open unit of work: penalties suspend or remove a merchant."""
    merchant = uow.session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound("no such merchant")
    merchant.status = status.value


def merchant_user_ids(uow: InTransaction, merchant_id: int) -> list[int]:
    """Inside an open unit of work: who should hear about this merchant's business."""
    return list(uow.session.scalars(select(User.id).where(User.merchant_id == merchant_id, User.active)))


def merchant_user_ids_many(uow: InTransaction, merchant_ids: list[int]) -> dict[int, list[int]]:
    """Inside an open unit of work: `merchant_user_ids` of several merchants in one query."""
    out: dict[int, list[int]] = {m: [] for m in merchant_ids}
    for user_id, merchant_id in uow.session.execute(select(User.id, User.merchant_id).where(
            User.merchant_id.in_(sorted(set(merchant_ids))), User.active).order_by(User.id)):
        if merchant_id is not None:
            out[merchant_id].append(user_id)
    return out


def list_merchants(uow: UnitOfWork) -> list[dict[str, object]]:
    with uow:
        return [{"id": m.id, "name": m.name, "status": m.status, "created_at": m.created_at.isoformat()}
                for m in uow.session.scalars(select(Merchant).order_by(Merchant.id))]


def user_ids_with_role(uow: InTransaction, role: Role) -> list[int]:
    return list(uow.session.scalars(select(User.id).where(User.role == role.value, User.active)))


def audit_log(uow: UnitOfWork, *, cursor: int | None, limit: int, action: str | None) -> list[dict[str, object]]:
    with uow:
        return list_entries(uow.session, cursor=cursor, limit=limit, action=action)


LOCALES = ("zh_CN", "en")  # the languages the consoles have catalogues for


def set_locale(uow: UnitOfWork, actor: Principal, locale: str | None) -> None:
    """The user's own console language (None: follow the browser's Accept-Language)."""
    if locale is not None and locale not in LOCALES:
        raise ValidationFailed(f"locale must be one of {', '.join(LOCALES)}")
    with uow:
        uow.session.execute(update(User).where(User.id == actor.user_id).values(locale=locale))
        uow.commit()


def locale_of(uow: UnitOfWork, user_id: int) -> str | None:
    with uow:
        return uow.session.scalar(select(User.locale).where(User.id == user_id))


def role_of(uow: UnitOfWork, user_id: int) -> str | None:
    """Inside an open unit of work: a user's role, or None when there is no such user."""
    user = uow.session.get(User, user_id)
    return user.role if user is not None else None
