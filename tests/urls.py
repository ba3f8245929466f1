from django.contrib import admin
from django.urls import path

from reliable_queue.admin import QueueAdmin
from reliable_queue.models import Dashboard

# A second, custom admin site: the queue pages must work on any AdminSite.
ops_site = admin.AdminSite(name="ops")
ops_site.site_header = "Operations"
ops_site.register(Dashboard, QueueAdmin)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("ops/", ops_site.urls),
]
