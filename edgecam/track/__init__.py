"""The tracking stage, between postprocess and the sinks (a stage of the pipeline that keeps
state across frames: the tracks).

  geometry.py   IoU, anchor points, sides of lines, points in polygons (pure)
  tracker.py    Tracker: ByteTrack-style matching on predicted boxes, tentative tracks, ids, label votes
  filters.py    which detections count (labels, scores, sizes) and N-of-M hysteresis (pure)
  rules.py      counting lines (crossings with direction) and zones (enter, leave, time inside)
  motion.py     the motion gate: is there anything to infer on this frame?
  stage.py      TrackStage: all of it on a Result, in frame order; the events it finds


Nothing is imported here: config.py checks lines and zones with rules.py, and the stage
imports the model side, which imports config."""
