"""The caller of a request, whichever way it authenticated."""
from dataclasses import dataclass, field

MASTER_USER_ID = "default_user_id"


@dataclass(frozen=True)
class Principal:
    kind: str  # "admin", "team_key", "personal_key" or "user"
    actor: str  # what created_by/updated_by and the audit trail record
    team_id: str | None = None
    key_token: str | None = None
    key_name: str | None = None
    key_models: tuple = ()
    key_limits: dict = field(default_factory=dict)
    user_id: str | None = None
    # team id -> role, for dashboard users
    roles: dict = field(default_factory=dict)

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin"

    def team_role(self, team_id: str) -> str | None:
        """The role this caller has in a team: admin, member, or None."""
        if self.is_admin:
            return "admin"
        if self.kind == "team_key":
            return "member" if self.team_id == team_id else None
        return self.roles.get(team_id)


MASTER = Principal(kind="admin", actor=MASTER_USER_ID)
# changes made with the operator's command-line tools
OPERATOR = Principal(kind="admin", actor="operator")
