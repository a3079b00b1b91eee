"""tribeflow core: naturalistic stimuli -> TRIBE v2 predicted fMRI responses.

Data flows one way: ``media`` -> ``events`` -> ``features`` -> ``encoder`` /
``segments`` -> ``products``. Nothing downstream is imported upstream.
"""

__version__ = "0.1.0"
