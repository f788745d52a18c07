"""Persistence: SQLAlchemy models, the database handle, migrations and run services."""
