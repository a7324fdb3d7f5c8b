"""The LiteLLM-compatible management routes (models, teams, keys, users, health), JSON only."""
from flask import Blueprint

bp = Blueprint("api", __name__)

# importing the modules registers their routes
from webapp.api import deployments, health, keys, reference, spend, teams, users  # noqa: E402,F401
