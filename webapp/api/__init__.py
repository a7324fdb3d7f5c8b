"""The LiteLLM-compatible management routes (models, teams, keys, users, health), JSON only."""
from flask import Blueprint

bp = Blueprint("api", __name__)

# importing the modules registers their routes
from webapp.api import (deployments, health, keys, metrics, reference, spend,  # noqa: E402,F401
                        teams, users)
