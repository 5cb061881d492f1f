from django.apps import AppConfig


class TodosConfig(AppConfig):
    name = "backend.todos"
    label = "todos"
    verbose_name = "Tasks"
