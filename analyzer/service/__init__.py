"""The control loop: applies core's decisions through the adapters, keeps state, tells people.

It serves the operator whose mesh is being upgraded: the service loop and its operator verbs,
the upgrade engine, preflight, analysis of a restart, leadership, maintenance windows, the
timeline, alerting, rule reloads, self-metrics and logs. It imports no presentation: the
command wires in the report writer, as it wires in the engine's observer.
"""
