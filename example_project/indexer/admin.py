from django.contrib import admin

from .models import SourceFile


@admin.register(SourceFile)
class SourceFileAdmin(admin.ModelAdmin):
    list_display = ["path", "lines", "words", "definitions", "size"]
    search_fields = ["path"]
