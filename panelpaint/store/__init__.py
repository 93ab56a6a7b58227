"""The job store: SQLAlchemy schema, state machine, sessions and file storage shared by web and workers."""
