"""Django's MySQL/MariaDB backend whose health check gives up once (see base.py)."""
