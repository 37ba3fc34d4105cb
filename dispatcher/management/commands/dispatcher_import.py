import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from dispatcher.kamailio_list import DispatcherListError
from dispatcher.services import import_dispatcher_list


class Command(BaseCommand):
    help = "Import a Kamailio dispatcher.list: all or nothing, errors name the line."

    def add_arguments(self, parser):
        parser.add_argument("path", help="dispatcher.list file, or - for standard input")
        parser.add_argument("--replace", action="store_true", help="make the table exactly the file (removes what it lacks)")
        parser.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")

    def handle(self, path, replace, dry_run, **options):
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        try:
            result = import_dispatcher_list(text, replace=replace, dry_run=dry_run)
        except DispatcherListError as exc:
            raise CommandError(f"{path}: nothing imported\n{exc}") from None
        for change in result.changes:
            self.stdout.write(change)
        for kept in result.kept:
            self.stdout.write(kept)
        verb = "would change" if dry_run else "changed"
        self.stdout.write(f"{len(result.changes)} {'entry' if len(result.changes) == 1 else 'entries'} {verb}")
