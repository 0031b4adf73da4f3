"""Running edgecam as a service: systemd's notify protocol, watchdog and journald priorities
(systemd.py), and SIGHUP reloads (reload.py). Both plug into the runners through the
supervisor interface (edgecam/pipeline/hooks.py) and the model switch (edgecam/model/switch.py)."""
