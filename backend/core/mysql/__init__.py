"""Django's MySQL/MariaDB backend with a health check that gives up once (backend.core.mysql.base)."""
