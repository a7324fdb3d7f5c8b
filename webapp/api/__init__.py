"""The LiteLLM-compatible management routes (models, teams, keys, health), JSON only."""
from flask import Blueprint

bp = Blueprint("api", __name__)

from webapp.api import deployments, health, keys, metrics, reference, spend, teams, users  # noqa: E402,F401  (registers the routes)
