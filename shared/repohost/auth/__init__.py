"""Authentication (API keys, IP whitelists) and authorization (permission levels)."""
