"""The calllog service: a 7-day projection of the API calls gateways report."""
