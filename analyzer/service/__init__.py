"""The control loop: applies core's decisions through the adapters, keeps state, tells people.

It serves the operator whose mesh is being upgraded: the service (``service``: its loop,
operator verbs and standby inbox, engine worker and status, over one shared ``context``),
the upgrade engine, preflight, analysis of a restart, leadership, maintenance hours, the
timeline, alerting, rule reloads, self-metrics and logs. It imports no presentation and no
lab (import-linter): the command wires in the report writer and the report listing, as it
wires in the engine's observer; the verbs' vocabulary (``control``) is the service's own.
"""
