"""Triton's Django project: settings, URLs, ASGI entry point and the domain apps."""

# PyMySQL stands in for mysqlclient, so DATABASE_URL=mysql://... works without a C build.
import pymysql

pymysql.install_as_MySQLdb()
