"""Who is calling: Bearer keys for the JSON routes, sessions for the dashboard, and access rules."""
