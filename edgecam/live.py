"""Live sources (cameras and streams): placeholder until the live-mode issue."""
