# The unmanaged model that carries the admin permissions (no table is created).

from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
    ]

    operations = [
        migrations.CreateModel(
            name='Dashboard',
            fields=[
                ('id', models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
            ],
            options={
                'verbose_name': 'queue',
                'verbose_name_plural': 'queues',
                'permissions': [('view_queues', 'Can view queues and jobs'), ('requeue_jobs', 'Can requeue jobs'), ('delete_jobs', 'Can delete jobs'), ('purge_jobs', 'Can purge all jobs of a state')],
                'managed': False,
                'default_permissions': (),
            },
        ),
    ]
