"""Kamailio reads a destination's `weight` only in 1-100 (dispatch.c ds_set_attrs: outside it,
"weight N not in 1-100 range - ignoring destination", and the weight becomes 0). lbpanel takes
weights up to 1,000,000, so a list it writes can quietly lose its weights in a real Kamailio:
the form and the import preview warn, and the export refuses such a list unless told to write it anyway.
"""

from dispatcher.kamailio_list import LineError

KAMAILIO_MIN_WEIGHT, KAMAILIO_MAX_WEIGHT = 1, 100


def outside_kamailio(weight):
    """0 is no weight (the list line has no weight= then), which Kamailio reads the same way."""
    return bool(weight) and not KAMAILIO_MIN_WEIGHT <= weight <= KAMAILIO_MAX_WEIGHT


def weight_problem(weight):
    return f"weight {weight} is outside Kamailio's 1-100: Kamailio would ignore it (weight 0) for this destination"


class KamailioWeightRefused(ValueError):
    """The export has lines a Kamailio would misread; `errors` are LineErrors numbered as in the file."""

    def __init__(self, errors):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def check_export(lines_with_weights):
    """[(lineno, line, weight)] -> LineErrors for the weights Kamailio would ignore."""
    return [
        LineError(lineno, line, weight_problem(weight)) for lineno, line, weight in lines_with_weights if outside_kamailio(weight)
    ]
