"""The REST surface (django-ninja): one router module per area, schemas beside it."""
