"""Alerts: rules judged against the live snapshot every few seconds by a Celery beat task, one notice per
episode (and one when it ends) to a webhook and to e-mail, rate-limited, audited.

rules.py     Finding, the snapshot rules see, and the built-in rules
registry.py  which rules run (the list a new rule is added to)
models.py    AlertSettings (the panel's page), AlertEpisode, AlertNotice, AlertDelivery, AlertMessage, AlertMemory,
             AlertChannelStatus
engine.py    evaluate: findings -> episodes -> notices -> deliveries
channels.py  webhook and e-mail: the message text and sending it
status.py    each channel's delivery outcome, for the banner, the settings page, /metrics and /healthz
tasks.py     the beat's task
"""
