from django.db import migrations

from backend.commerce.seeding import DEFAULT_TEMPLATE, DEFAULT_TEMPLATE_NAME



def create_default_template(apps, schema_editor):
    InvoiceTemplate = apps.get_model("commerce", "InvoiceTemplate")
    InvoiceTemplate.objects.get_or_create(
        name=DEFAULT_TEMPLATE_NAME, defaults={"html_template": DEFAULT_TEMPLATE}
    )


def remove_default_template(apps, schema_editor):
    InvoiceTemplate = apps.get_model("commerce", "InvoiceTemplate")
    InvoiceTemplate.objects.filter(name=DEFAULT_TEMPLATE_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("commerce", "0001_initial")]

    operations = [migrations.RunPython(create_default_template, remove_default_template)]
