"""`manage.py probe_preset aggressive`: the seed's probe timings in one step (the panel has the same buttons)."""

from django.core.management.base import BaseCommand, CommandError

from dispatcher.choices import PROBE_PRESETS, Cause
from dispatcher.services import apply_probe_preset


class Command(BaseCommand):
    help = "Apply a probe preset: " + "; ".join(f"{name} = {p['label']}" for name, p in PROBE_PRESETS.items())

    def add_arguments(self, parser):
        parser.add_argument("preset", help=", ".join(PROBE_PRESETS))

    def handle(self, *args, preset, **options):
        if preset not in PROBE_PRESETS:
            raise CommandError(f"preset must be one of {', '.join(PROBE_PRESETS)}, got {preset!r}")
        settings = apply_probe_preset(preset, cause=Cause.API)
        self.stdout.write(f"probe settings: {settings} (takes effect at the next tick, no restart)")
