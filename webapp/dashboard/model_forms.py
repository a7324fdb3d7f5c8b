"""The model registration form: its fields follow the chosen provider, and it builds the same
body the JSON API's /model/new and /model/update take, checked by the same schema."""
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length

from webapp import providers
from webapp.providers.base import Target

PROVIDERS = [SelectChoice("openai", "OpenAI or OpenAI-compatible"),
             SelectChoice("azure", "Azure OpenAI"), SelectChoice("anthropic", "Anthropic")]
# the optional connection fields each provider uses, in the order the form shows them
PROVIDER_FIELDS = {
    "openai": ("api_base", "api_version", "organization"),
    "azure": ("api_base", "api_version"),
    "anthropic": ("api_base",),
}
FIELD_OF_PARAM = {"model_name": "model_name", "litellm_params.model": "model",
                  "litellm_params.custom_llm_provider": "provider",
                  "litellm_params.api_base": "api_base",
                  "litellm_params.api_version": "api_version",
                  "litellm_params.organization": "organization",
                  "litellm_params.api_key": "api_key",
                  "litellm_params.litellm_credential_name": "credential"}


class ModelForm(FlaskForm):
    model_name = StringField("Public name", validators=[DataRequired(), Length(max=256)])
    provider = SelectField("Provider", choices=PROVIDERS, default="openai")
    model = StringField("Upstream model", validators=[DataRequired(), Length(max=256)])
    api_base = StringField("API base URL", validators=[Length(max=2048)])
    api_version = StringField("API version", validators=[Length(max=64)])
    organization = StringField("Organization", validators=[Length(max=256)])
    credential = SelectField("Provider key", choices=[])
    api_key = PasswordField("Or paste a key", validators=[Length(max=4096)])

    def set_credentials(self, names: list[str], keep_label: str):
        self.credential.choices = [SelectChoice("", keep_label)] + [SelectChoice(n) for n in names]

    def provider_fields(self) -> tuple:
        return PROVIDER_FIELDS.get(self.provider.data, PROVIDER_FIELDS["openai"])

    def params(self, editing: bool = False) -> dict:
        params = {"model": f"{self.provider.data}/{(self.model.data or '').strip()}",
                  "custom_llm_provider": self.provider.data}
        for name in self.provider_fields():
            value = (getattr(self, name).data or "").strip()
            if value:
                params[name] = value
        if self.credential.data:
            params["litellm_credential_name"] = self.credential.data
        elif (self.api_key.data or "").strip():
            params["api_key"] = self.api_key.data.strip()
        return params

    def new_body(self, team_id: str | None) -> dict:
        info = {"team_id": team_id} if team_id else {}
        return {"model_name": (self.model_name.data or "").strip(), "litellm_params": self.params(),
                "model_info": info}

    def update_body(self, model_id: str) -> dict:
        return {"model_name": (self.model_name.data or "").strip(), "litellm_params": self.params(),
                "model_info": {"id": model_id}}

    def show_error(self, error) -> bool:
        """Put a service error beside its field; False when it belongs to no field."""
        field = getattr(self, FIELD_OF_PARAM.get(error.param or "", ""), None)
        if field is None:
            return False
        field.errors = [*field.errors, error.message]
        return True

    def fill_from(self, row):
        provider, model = providers.split_model(row.params)
        self.model_name.data = row.public_name
        # the provider as registered (openai + api_version stays openai, as the user chose it)
        self.provider.data = next((p for p in (provider, row.provider) if p in PROVIDER_FIELDS),
                                  "openai")
        self.model.data = model
        for name in ("api_base", "api_version", "organization"):
            getattr(self, name).data = row.params.get(name) or ""


def upstream_url(params: dict) -> str:
    """Where a deployment with these params sends a chat call (no key needed to say so)."""
    provider, model = providers.for_params(params)
    if provider is None:
        return ""
    target = Target(deployment_id="", public_name="", team_id=None, provider=provider,
                    upstream_model=model, api_base=params.get("api_base"),
                    api_version=params.get("api_version"), api_key=None, organization=None,
                    timeout=None, stream_timeout=None, max_retries=None)
    return provider.url(target, "chat")
