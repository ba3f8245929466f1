"""The queue dashboard in the Django admin.

Registered on the default admin site. To put it on a custom ``AdminSite``::

    from reliable_queue.admin import QueueAdmin
    from reliable_queue.models import Dashboard

    my_site.register(Dashboard, QueueAdmin)

The pages live in :mod:`reliable_queue.admin_views`; the permissions they check
are declared on :class:`reliable_queue.models.Dashboard`.
"""

from __future__ import annotations

from django.contrib import admin

from .admin_views import QueueAdminViews
from .models import Dashboard


class QueueAdmin(QueueAdminViews, admin.ModelAdmin):
    """Dashboard, job lists, job detail and actions for every configured queue."""


admin.site.register(Dashboard, QueueAdmin)
