from django.apps import AppConfig


class DispatcherConfig(AppConfig):
    name = "dispatcher"
    verbose_name = "Dispatcher"

    def ready(self):
        from dispatcher import signals  # noqa: F401  (connects the account audit)
