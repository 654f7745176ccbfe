"""The knowledge-gap report: questions the bot could not answer, grouped by similarity."""
