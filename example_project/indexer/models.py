from django.db import models


class SourceFile(models.Model):
    """Counts for one source file, written by the ``index_file`` task.

    Keyed by path and written with ``update_or_create``, and every field is a
    function of the file's content, so a job delivered twice (its worker was
    killed after the write but before the ack) leaves the row as it was.
    """

    path = models.CharField(max_length=1024, unique=True)
    size = models.PositiveIntegerField()
    lines = models.PositiveIntegerField()
    words = models.PositiveIntegerField()
    definitions = models.PositiveIntegerField(help_text="lines starting with def, async def or class")

    class Meta:
        ordering = ["path"]

    def __str__(self) -> str:
        return self.path
