"""Client for the helpdesk platform's Table API, and the embedded instance."""
