"""Device drivers. Each device has one interface, a real implementation for the
Raspberry Pi and a simulated one for hw-sim, chosen by ``backend`` in its config
section. Vendor libraries (pyscard, RPi.GPIO, picamera2, luma's SPI) are imported
inside the real implementation, never at module top, so everything imports on x86.
"""
