"""Screens: what the patient sees, as data, and how it is drawn on the panel."""
