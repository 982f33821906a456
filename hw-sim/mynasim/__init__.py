"""mynasim: the hardware simulator that runs the real daemon against a virtual card, host, keypad, camera and display."""
