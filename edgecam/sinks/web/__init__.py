"""The browser view (standard library HTTP, bounded) and Prometheus metrics.

  view.py      WebView: the sink the live runner feeds
  server.py    the bounded server: one selector loop, a fixed pool of workers
  admission.py who makes room when it is full (the slowest request, a viewer without the token)
  protocol.py  HTTP requests parsed within bounds, answers built
  security.py  Host, Origin, token and ticket checks; the token's file in the state folder
  routes.py    what each URL answers; the controls' intents
  page.py      the page (HTML, CSS, JS; no CDN)
  review.py    the review page's routes and the history's JSON API; review_page.py its page
  teach.py     teaching from the browser (/api/teach); teach_page.py the panel both pages share
  metrics.py   the Prometheus sink (prometheus_client, optional: edgecam[metrics])"""

from edgecam.sinks.web.view import WebView

__all__ = ["WebView"]
