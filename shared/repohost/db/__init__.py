"""Data model, engine and sessions, migrations, bootstrap data and queries."""
