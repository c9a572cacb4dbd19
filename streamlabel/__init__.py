"""streamlabel: turns pet-camera video into labeled training data (YOLO → Grounding DINO → SAM2 → VLM gate)."""

__version__ = "0.1.0"
