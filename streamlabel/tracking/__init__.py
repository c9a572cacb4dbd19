"""Kalman tracking of anchors and parts across frames (filterpy); see the tracking issue. Not wired in yet."""
