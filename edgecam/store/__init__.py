"""The history: an embedded SQLite store (the standard library's sqlite3, WAL mode) in the
state folder, of what happened: each tracking event with a small annotated snapshot, each clip,
the line and zone counts per minute, and a status sample a minute. Live mode resumes today's
totals from it at the start; the browser's review page and /api/ read it.

  settings.py  the ``history:`` section of the config schema
  db.py        the file: opened (a corrupt one moved aside), its tables, writes, pruning (oldest
               first, by age and by size)
  queries.py   the reading side: events, counts per minute/hour/day, clips, today's totals
  writer.py    the writer thread and its bounded queue (the pipeline never waits on it; a full
               queue drops and counts; a failed write, e.g. a full disk, is said once and retried)
  sink.py      HistorySink: what the pipeline calls (events, drawn frames, finished clips, status)

Nothing is imported here: config.py imports settings.py, and sink.py imports the sinks' base."""
