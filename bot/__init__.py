"""The agent assistant (built in a later issue)."""
