"""The model registration form: its fields are those the chosen provider declares
(providers/*.py), and it builds the same body the JSON API's /model/new and /model/update take,
checked by the same schema."""
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length

from webapp import providers
from webapp.errors import APIError

DEFAULT_PROVIDER = "openai"
# the form's own names for the parameters that have no declared field of the same name
FIELD_OF_PARAM = {"model_name": "model_name", "litellm_params.model": "model",
                  "litellm_params.custom_llm_provider": "provider",
                  "litellm_params.litellm_credential_name": "credential"}


class ModelForm(FlaskForm):
    model_name = StringField("Public name", validators=[DataRequired(), Length(max=256)])
    provider = SelectField("Provider", default=DEFAULT_PROVIDER, choices=[
        SelectChoice(p.name, p.label) for p in providers.registered()])
    model = StringField("Upstream model", validators=[DataRequired(), Length(max=256)])
    credential = SelectField("Provider key", choices=[])

    def set_credentials(self, names: list[str], keep_label: str):
        self.credential.choices = [SelectChoice("", keep_label)] + [SelectChoice(n) for n in names]

    def chosen(self) -> providers.Provider:
        return providers.get(self.provider.data) or providers.get(DEFAULT_PROVIDER)

    def provider_fields(self) -> tuple[str, ...]:
        """The chosen provider's connection fields, in the order it declares them."""
        return tuple(f.name for f in self.chosen().fields if not f.secret)

    def secret_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.chosen().fields if f.secret)

    def params(self) -> dict:
        params = {"model": f"{self.provider.data}/{(self.model.data or '').strip()}",
                  "custom_llm_provider": self.provider.data}
        for name in self.provider_fields():
            value = (getattr(self, name).data or "").strip()
            if value:
                params[name] = value
        if self.credential.data:
            params["litellm_credential_name"] = self.credential.data
        for name in self.secret_fields():
            value = (getattr(self, name).data or "").strip()
            if value and not (name == "api_key" and self.credential.data):
                params[name] = value
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
        param = error.param or ""
        name = FIELD_OF_PARAM.get(param) or param.removeprefix("litellm_params.")
        field = self._fields.get(name)
        if field is None:
            return False
        field.errors = [*field.errors, error.message]
        return True

    def fill_from(self, row):
        provider, model = providers.split_model(row.params)
        self.model_name.data = row.public_name
        # the provider as registered (openai + api_version stays openai, as the user chose it)
        self.provider.data = next((p for p in (provider, row.provider) if providers.get(p)),
                                  DEFAULT_PROVIDER)
        self.model.data = model
        for name in self.provider_fields():
            getattr(self, name).data = row.params.get(name) or ""


# one form field per declared litellm_params field; secrets are write-only password fields
for _name, _declared in providers.declared_fields().items():
    setattr(ModelForm, _name, (PasswordField if _declared.secret else StringField)(
        _declared.label, description=_declared.help,
        validators=[Length(max=_declared.max_length)]))


def upstream_url(params: dict) -> str:
    """Where a deployment with these params sends a chat call (no key needed to say so)."""
    provider, model = providers.for_params(params)
    if provider is None:
        return ""
    try:
        return provider.url(providers.target_for(params, {}), "chat")
    except APIError:  # the URL needs a secret (Vertex AI's project from its key file)
        return ""
