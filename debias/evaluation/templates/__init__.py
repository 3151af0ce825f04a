"""The project's own identity template sets (YAML), read by debias.evaluation.suites.load_templates,
and the forms that fill their slots grammatically (``forms.yaml``, read by :mod:`.forms`)."""
