"""Flask blueprints, templates and assets for the embeddable widgets."""
