"""Domain logic as plain functions over a SQLAlchemy session: no Dramatiq in here."""
