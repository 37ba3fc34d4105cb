from django.apps import AppConfig


class DispatcherConfig(AppConfig):
    name = "dispatcher"
    verbose_name = "Dispatcher"

    def ready(self):
        from dispatcher import signals  # noqa: F401, PLC0415 (connects the account audit once the apps are loaded)
