"""SQL migrations of the archive database (applied by backend.core.db.migrate)."""
