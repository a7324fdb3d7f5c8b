"""Column helpers shared by the ORM classes."""
import uuid
from datetime import datetime, timezone


def utcnow() -> datetime:
    # stored naive in UTC so SQLite and PostgreSQL compare the same way
    return datetime.now(timezone.utc).replace(tzinfo=None)


def new_id() -> str:
    return str(uuid.uuid4())


def isoformat(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None
