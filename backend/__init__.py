"""AI-assisted customer support chat."""
