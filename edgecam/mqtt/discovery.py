"""Home Assistant MQTT discovery (pure): one retained config per entity, at
``<discovery prefix>/<component>/<node>/<object>/config``, all on one device, with the
availability topic; an empty retained payload on the same topic removes an entity.

Entities: per watched label (mqtt.labels) a binary sensor "<label> detected" and a sensor
"<label> count"; per line the sensors "<line> in" / "<line> out", per zone "<zone> inside" /
"<zone> entered" (with a history, edgecam/store/: "<line> in today" / "<line> out today" and
"<zone> entered today", total_increasing, back to 0 at local midnight); with --teach-frame the
taught state: a sensor of its label, or a binary sensor for two labels (ON for the second in
alphabetical order: "open" of closed/open); the FPS and latency sensors; with mqtt.snapshot a
camera; in live mode the controls, derived from the live controls' schema: a select for the
model (the provisioned models of the running model's task), numbers for the threshold and top_k
(the schema's range and step), switches for pause, overlay and show_cost (their command topics
are the set topics)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Sequence

from edgecam import __version__
from edgecam.config import CONTROLS
from edgecam.mqtt.topics import Topics, encode, slug


@dataclass
class Device:
    """What Home Assistant's discovery needs to know about this camera."""

    name: str                              # mqtt.name
    topics: Topics
    prefix: str = "homeassistant"          # mqtt.discovery_prefix
    labels: Sequence[str] = ()
    lines: Sequence[str] = ()
    zones: Sequence[str] = ()
    snapshot: bool = False
    live: bool = False
    models: List[str] = field(default_factory=list)   # the select's options (empty: no select yet)
    states: Sequence[str] = ()             # the taught frame states (--teach-frame), sorted
    today: bool = False                    # today's totals (a history): "<line> in today" ...

    @property
    def node(self) -> str:
        return slug(self.name)

    def topic(self, component: str, obj: str) -> str:
        return f"{self.prefix}/{component}/{self.node}/{slug(obj)}/config"

    def entity(self, component: str, obj: str, name: str, **conf) -> tuple:
        conf = {"name": name, "unique_id": f"edgecam_{self.node}_{slug(obj)}",
                "availability_topic": self.topics.availability, **conf,
                "device": {"identifiers": [f"edgecam_{self.node}"], "name": f"edgecam {self.name}",
                           "manufacturer": "edgecam", "model": "edgecam camera", "sw_version": __version__},
                "origin": {"name": "edgecam", "sw_version": __version__}}
        return self.topic(component, obj), conf


def _count(d: Device, name: str, what: str, total: bool) -> tuple:
    title = what.replace("today_", "") + " today" if what.startswith("today_") else what
    return d.entity("sensor", f"{name}_{what}", f"{name} {title}", state_topic=d.topics.counts(name),
                    value_template="{{ value_json['%s'] }}" % what,
                    state_class="total_increasing" if total else "measurement")


def _sensors(d: Device) -> List[tuple]:
    t, out = d.topics, []
    for label in d.labels:
        extra = {"device_class": "occupancy"} if label == "person" else {}
        out.append(d.entity("binary_sensor", f"{label}_detected", f"{label} detected", state_topic=t.objects(label),
                            value_template="{{ 'ON' if (value | int(0)) > 0 else 'OFF' }}", **extra))
        out.append(d.entity("sensor", f"{label}_count", f"{label} count", state_topic=t.objects(label),
                            state_class="measurement"))
    today = ("today_in", "today_out") if d.today else ()
    out += [_count(d, name, what, what != "inside") for name, kinds in
            [(n, ("in", "out") + today) for n in d.lines]
            + [(z, ("inside", "entered") + (("today_entered",) if d.today else ())) for z in d.zones]
            for what in kinds]
    out += _state(d)
    diagnostic = {"state_topic": t.status, "state_class": "measurement", "entity_category": "diagnostic"}
    out.append(d.entity("sensor", "fps", "FPS", value_template="{{ value_json.fps }}", unit_of_measurement="fps",
                        **diagnostic))
    out.append(d.entity("sensor", "latency", "latency", value_template="{{ value_json.latency_ms }}",
                        unit_of_measurement="ms", device_class="duration", **diagnostic))
    return out


def _state(d: Device) -> List[tuple]:
    if len(d.states) == 2:
        return [d.entity("binary_sensor", "state", f"{d.states[1]}", state_topic=d.topics.state,
                         value_template="{{ 'ON' if value_json.state == '%s' else 'OFF' }}" % d.states[1])]
    if d.states:
        return [d.entity("sensor", "state", "state", state_topic=d.topics.state,
                         value_template="{{ value_json.state }}")]
    return []


def _controls(d: Device) -> List[tuple]:
    """The live controls (edgecam.config.CONTROLS), each as the entity its type makes: a
    switch for true/false, a number (the schema's range and step) for a number, a select of
    the provisioned models for the model; lists (classes, lines, zones) have none. Their
    command topics are the set topics, their states the status (by short name)."""
    t, out = d.topics, []
    for c in CONTROLS:
        name = c.alias or c.key
        state = {"command_topic": t.set(name), "state_topic": t.status}
        if c.key == "model.name" and d.models:
            out.append(d.entity("select", name, name, options=list(d.models), value_template="{{ value_json.model }}",
                                **state))
        elif c.base_type is bool:
            out.append(d.entity("switch", name, name, payload_on="true", payload_off="false",
                                value_template="{{ 'true' if value_json.%s else 'false' }}" % name, **state))
        elif c.base_type in (int, float) and c.range:
            out.append(d.entity("number", name, name, min=c.range[0], max=c.range[1], step=c.step or 1,
                                mode="slider" if c.base_type is float else "box",
                                value_template="{{ value_json.%s }}" % name, **state))
    return out


def configs(d: Device) -> Dict[str, bytes]:
    """Every entity this device announces: discovery topic -> config payload."""
    entities = _sensors(d) + (_controls(d) if d.live else [])
    if d.snapshot:
        entities.append(d.entity("camera", "snapshot", "snapshot", topic=d.topics.snapshot))
    return {topic: encode(conf) for topic, conf in entities}


def every_topic(d: Device) -> List[str]:
    """Every discovery topic this device may have announced, whatever its options: what
    ``--mqtt-discovery off`` empties (and what a change of options leaves empty)."""
    full = Device(d.name, d.topics, d.prefix, d.labels, d.lines, d.zones, snapshot=True, live=True, models=["x"])
    return list(configs(full)) + [full.topic(component, "state") for component in ("sensor", "binary_sensor")]


def announcements(d: Device, on: bool) -> Dict[str, bytes]:
    """The retained payloads to publish: the configs (``on``), and an empty payload for every
    other topic the device may have announced before (all of them when off)."""
    wanted = configs(d) if on else {}
    waiting = {d.topic("select", "model")} if on and d.live and not d.models else set()  # known at the first result
    return {**{topic: b"" for topic in every_topic(d) if topic not in wanted and topic not in waiting}, **wanted}
