"""ORM classes, one module per aggregate. Importing this package registers every table."""
from webapp.models.audit import AuditEntry
from webapp.models.credential import ProviderCredential
from webapp.models.deployment import Deployment
from webapp.models.key import VirtualKey
from webapp.models.login import LoginCounter
from webapp.models.request_log import RequestLogEntry
from webapp.models.settings import ChangeCounter
from webapp.models.spend import SpendCounter
from webapp.models.stored_response import StoredResponse
from webapp.models.team import DeletedTeam, Team, TeamModelAlias
from webapp.models.user import Membership, User

__all__ = [
    "AuditEntry", "ChangeCounter", "DeletedTeam", "Deployment", "LoginCounter", "Membership",
    "ProviderCredential", "RequestLogEntry", "SpendCounter", "StoredResponse", "Team",
    "TeamModelAlias", "User", "VirtualKey",
]
