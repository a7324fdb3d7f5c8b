"""Where the limit counters live: a SQLite file every worker of one machine shares (the embedded
default), or Redis (or Valkey) that every instance shares. Both check all of a call's subjects
and count them in one atomic step, so no two workers can both take the last place. A process
asks its store one trip at a time, each trip carrying what waited meanwhile (trips.py); the
replacing of a settled call's token reservation by its real tokens, and of its budget holds by
its cost, is deferred to the next trip, by 50 ms at most (FLUSH_SECONDS); admissions and slot
releases never are.

Budgets are held there too: each budget a call falls under (a Hold: the subject and its budget
period) has a spend counter, started from the database's spend the first time the store sees
it, and the holds of the calls in flight (their estimated cost). A call is admitted while the
counter plus the holds stays below max_budget, in the same atomic step as the rate limits, and
its hold becomes its real cost when it ends. A counter left alone for BUDGET_KEEP seconds is
dropped and started again from the database.

The shared types are in base.py, the trips in trips.py, one module per store beside them, and
the script a Redis trip runs in trip.lua."""
from webapp.services.limit_stores.base import BUDGET_KEEP, Check, Hold, Refusal, Unavailable
from webapp.services.limit_stores.redis_store import RedisStore
from webapp.services.limit_stores.sqlite_store import SQLiteStore
from webapp.services.limit_stores.trips import FLUSH_SECONDS

__all__ = ["BUDGET_KEEP", "FLUSH_SECONDS", "Check", "Hold", "RedisStore", "Refusal",
           "SQLiteStore", "Unavailable"]
