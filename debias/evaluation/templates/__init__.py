"""The project's own identity template sets (YAML), read by debias.evaluation.suites.load_templates."""
