from django.core.management.base import BaseCommand, CommandError

from dispatcher.kamailio_weight import KamailioWeightRefused
from dispatcher.services import export_dispatcher_list


class Command(BaseCommand):
    help = "Print the current table in Kamailio dispatcher.list format."

    def add_arguments(self, parser):
        parser.add_argument(
            "--anyway", action="store_true", help="Write weights outside Kamailio's 1-100 as they are instead of refusing."
        )

    def handle(self, **options):
        try:
            text = export_dispatcher_list(anyway=options["anyway"])
        except KamailioWeightRefused as exc:
            raise CommandError(f"not exported, Kamailio would ignore these weights (--anyway writes them):\n{exc}") from None
        self.stdout.write(text, ending="")
