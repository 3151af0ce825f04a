"""The project's own identity template sets (YAML), read by debias.suites.load_templates."""
