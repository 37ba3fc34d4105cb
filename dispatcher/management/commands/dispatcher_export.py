from django.core.management.base import BaseCommand

from dispatcher.services import export_dispatcher_list


class Command(BaseCommand):
    help = "Print the current table in Kamailio dispatcher.list format."

    def handle(self, **options):
        self.stdout.write(export_dispatcher_list(), ending="")
