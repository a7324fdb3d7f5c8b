"""Plain functions the JSON API, the proxy and the dashboard all call: the rules live here."""
