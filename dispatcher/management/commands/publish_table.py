from django.core.management.base import BaseCommand, CommandError
from redis.exceptions import RedisError

from dispatcher.services import republish


class Command(BaseCommand):
    help = "Republish the whole routing table (and last known health) to Redis, e.g. after a flush."

    def handle(self, **options):
        try:
            version = republish()
        except RedisError as exc:
            raise CommandError(f"Redis is not reachable at REDIS_URL: {exc}") from None
        self.stdout.write(f"published table version {version}")
