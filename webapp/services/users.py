"""Dashboard users: creation, password hashing (argon2id) and lookup."""
import base64
import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from webapp.blocking import LOWEST_PRIORITY, NativeThreads
from webapp.crypto import new_secret
from webapp.errors import APIError
from webapp.extensions import db
from webapp.models import User
from webapp.models.base import new_id
from webapp.services import audit

_hasher = PasswordHasher()  # argon2id with the library's RFC 9106 low-memory profile
# one hash takes ~180 ms of both cores and 64 MiB: in the event loop it stalled every call of the
# worker for that long (bench/PROFILE.md section 9); at most two at once per process bound the
# memory a burst of logins can take
_hashing = threading.BoundedSemaphore(2)
_threads = NativeThreads(2, nice=LOWEST_PRIORITY)  # busy cores serve the event loops first
NO_PASSWORD = "!"  # never matches: the user cannot log in until a password is set
# a user named only by its id (LiteLLM's member_add, /user/new) gets an address nobody can own
# (RFC 2606); it is shown as no email
NO_EMAIL_DOMAIN = "@no-email.invalid"


def _unmatchable_hash() -> str:
    """A hash in the hasher's own format and parameters that no password matches (a random
    digest): checking a password against it costs exactly what checking a user's does."""
    def random_b64(length: int) -> str:
        return base64.b64encode(secrets.token_bytes(length)).decode().rstrip("=")

    return (f"$argon2{_hasher.type.name.lower()}$v=19$m={_hasher.memory_cost},"
            f"t={_hasher.time_cost},p={_hasher.parallelism}$"
            f"{random_b64(_hasher.salt_len)}${random_b64(_hasher.hash_len)}")


UNMATCHABLE = _unmatchable_hash()


def _argon2(function, *args):
    with _hashing:
        return _threads.run(function, *args)


def find(user_id: str | None, email: str | None) -> User | None:
    if user_id:
        return db.session.get(User, user_id)
    if email:
        return db.session.scalar(select(User).where(User.email == email.strip().lower()))
    return None


def email_of(user: User) -> str | None:
    return None if user.email.endswith(NO_EMAIL_DOMAIN) else user.email


def address_for(user_id: str | None, email: str | None) -> str:
    """The email a new user is stored with: its own, its id when that is one, or none's."""
    if email:
        return email
    return user_id if user_id and "@" in user_id else f"{user_id or new_id()}{NO_EMAIL_DOMAIN}"


def find_or_create(principal, user_id: str | None, email: str | None) -> User:
    """The user named, created (without a password) when unknown, as LiteLLM's member_add does."""
    user = find(user_id, email)
    if user is not None:
        return user
    if user_id and email and find(None, email) is not None:
        raise APIError(400, f"user_email {email} belongs to another user than "
                            f"user_id={user_id}.", param="member.user_email")
    return create(principal, address_for(user_id, email), password=None, user_id=user_id)


def create(principal, email: str, password: str | None, is_admin: bool = False,
           user_id: str | None = None) -> User:
    email = email.strip().lower()
    if "@" not in email:
        raise APIError(400, "Give a valid email address.", param="email")
    if db.session.scalar(select(User).where(User.email == email)) is not None:
        raise APIError(400, f"A user with email {email} already exists.", param="email")
    user = User(id=user_id or new_id(), email=email, is_admin=is_admin,
                password_hash=_argon2(_hasher.hash, password) if password else NO_PASSWORD)
    db.session.add(user)
    db.session.flush()
    audit.record(principal, "user.create", "user", user.email, None,
                 after={"email": user.email, "is_admin": user.is_admin})
    return user


def set_password(user: User, password: str):
    """A new hash, and a new session token (every session of the user ends); the caller commits.
    The hash comes first: no database work of the caller waits for it."""
    user.password_hash = _argon2(_hasher.hash, password)
    user.session_token = new_id()


def one_time_password(user: User) -> str:
    password = new_secret()[:20]
    set_password(user, password)
    user.must_change_password = True
    return password


def _verified(stored: str, password: str) -> bool:
    # in the hashing thread: an exception raised there would be printed by gevent's thread pool,
    # traceback and all, at every wrong password
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _matches(stored: str, password: str) -> bool:
    return _argon2(_verified, stored, password)


def _end_transaction():
    """End the request's transaction (it has only read) so that its pooled connection goes back
    while argon2 runs: a login waiting for its hash held one, and a flood of logins emptied the
    pool that every proxied call needs now and then (the routing cache's check)."""
    db.session.commit()


def check_password(user: User, password: str) -> bool:
    """Whether this is the user's password, at the cost of any login, with no database connection
    held while argon2 runs."""
    stored = user.password_hash
    _end_transaction()
    matched = _matches(UNMATCHABLE if stored == NO_PASSWORD else stored, password)
    return matched and stored != NO_PASSWORD


def authenticate(email: str, password: str) -> User | None:
    """The user with this email and password, or None. An unknown email and a user without a
    password cost what a wrong password costs: one verification with the same parameters. No
    database connection is held while it runs; the user is read again after it."""
    found = db.session.execute(select(User.id, User.password_hash)
                               .where(User.email == email.strip().lower())).first()
    _end_transaction()
    if found is None or found.password_hash == NO_PASSWORD:
        _matches(UNMATCHABLE, password)  # the same work whether or not the user exists
        return None
    if not _matches(found.password_hash, password):
        return None
    user = db.session.get(User, found.id)
    # the password may have been replaced while it was checked
    return user if user is not None and user.password_hash == found.password_hash else None
