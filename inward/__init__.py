"""The service shell: app factory, CLI, auth, state store, jobs and the demo."""
