"""The web app's blueprints, one module per domain; app.py registers them. Helpers they share live one level up."""
