"""MQTT out, with Home Assistant discovery: a sink (sink.py) that publishes the events, the
counts, the state and a status summary through a broker, and takes the live settings from
``<prefix>/set/<key>``.

  settings.py   the ``mqtt:`` section of the config schema
  address.py    the --mqtt URL: parsed, checked, shown with its password redacted
  topics.py     topic names and payloads (pure)
  discovery.py  Home Assistant's discovery configs (pure)
  link.py       the paho-mqtt client: connection, backoff, state-change lines, the bounded queue
  sink.py       the Sink: what the pipeline calls (never waits on the network)

paho-mqtt is imported only when MQTT is configured (``pip install 'edgecam[mqtt]'``)."""
