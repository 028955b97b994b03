"""The web app: public pages (web/public), staff area (web/admin) and JSON API (web/api).

`newsletter.web.app.create_app(settings)` builds it; nothing here reads settings at import.
"""
