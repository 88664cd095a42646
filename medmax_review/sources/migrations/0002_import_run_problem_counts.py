from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("sources", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="importrun",
            name="problems",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="importrun",
            name="rejected",
            field=models.PositiveIntegerField(default=0, help_text="rows refused"),
        ),
        migrations.AlterField(
            model_name="importrun",
            name="errors",
            field=models.JSONField(
                blank=True, default=list, help_text="[{file, line, unit, field, message}]"
            ),
        ),
    ]
