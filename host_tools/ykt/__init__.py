"""ykt: the yikatong host command line (sync, card issue, emulators, inspect, sim)."""
