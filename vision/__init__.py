"""Edge vision: ONNX detectors, multi-object tracking, MOT evaluation.

Cameras, floor projection and shelf interactions arrive with the rest of the
vision issue; until then the twin's simulated positioning feed publishes
shopper tracks on the ``tracks`` topic the camera tracker will fill.
"""
