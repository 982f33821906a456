"""The RPi.GPIO API's constants (values as in RPi.GPIO 0.7), shared by our two implementations
of that API: the simulated pins (gpio_sim) and the GPIO character device (gpio_cdev). Code
written against ``RPi.GPIO`` then runs on either unchanged."""

BCM = 11
BOARD = 10
OUT = 0
IN = 1
LOW = 0
HIGH = 1
PUD_OFF = 20
PUD_DOWN = 21
PUD_UP = 22
RISING = 31
FALLING = 32
BOTH = 33
