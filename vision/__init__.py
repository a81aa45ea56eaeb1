"""Edge vision: camera sources, ONNX detectors, trackers, shelf interactions.

Empty until the vision issue: until then the twin's simulated positioning
feed publishes shopper tracks on the same ``tracks`` topic the camera tracker
will fill.
"""
