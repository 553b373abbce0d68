"""aebench.json_numbers: what JSON cannot hold (inf, NaN) written and read back."""

import json
import math

import numpy as np

from aebench.json_numbers import from_json, to_json


def test_infinities_round_trip_through_json_text():
    written = json.dumps([to_json(v) for v in (math.inf, -math.inf, 1.5, np.float64(math.inf), 3, None, "x")], allow_nan=False)
    back = [from_json(v) for v in json.loads(written)]
    assert back == [math.inf, -math.inf, 1.5, math.inf, 3, None, "x"]


def test_nan_is_written_as_null():
    assert json.dumps(to_json(float("nan")), allow_nan=False) == "null"


def test_other_strings_are_not_numbers():
    assert from_json("1.5") == "1.5" and from_json("infinity") == "infinity"
