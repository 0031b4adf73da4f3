"""edgecam: MobileNet V1/V2/V3 (classification and SSD detection) live on a small computer."""

__version__ = "0.1.0"
