"""`manage.py probe_round`: run one probe round now, in this process, and show the result."""

from django.core.management.base import BaseCommand

from dispatcher.models import Destination
from dispatcher.publisher import read_health
from lbcore import rules
from probes.rounds import run_round


class Command(BaseCommand):
    help = "Probe every destination due for probing once, now (as the worker would), and print what each answered."

    def handle(self, *args, **options):
        summary = run_round()
        health = read_health()
        for dest in Destination.objects.select_related("dset"):
            h = health.get(dest.pk)
            if h is None or not rules.probe_allowed(dest.admin_state):
                continue
            rtt = f"{h.rtt_ms:.1f} ms" if h.rtt_ms is not None else "-"
            self.stdout.write(f"set {dest.dset.setid:<3} {dest.uri:<40} {h.state:<8} {h.reason or '-':<28} {rtt}")
        for dest_id, old, new, reason in summary["transitions"]:
            self.stdout.write(f"changed: destination {dest_id} {old} -> {new} ({reason})")
        self.stdout.write(
            f"round {summary['round']}: probed {summary['probed']}, good {summary['good']}, "
            f"{len(summary['transitions'])} changes, {summary['duration_s']:.3f} s"
        )
