"""Average precision and macro mAP against hand-computed values."""
import math

import numpy as np
import pytest
import torch

from matsed_lite.evaluation import (average_precision, average_precision_per_class,
                                    mean_average_precision)


def test_ap_hand_example():
    # Ranked: + - + - : P@1 = 1 at recall 0.5, P@3 = 2/3 at recall 1.
    assert average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx(0.5 + 0.5 * 2 / 3)
    # Order of the input does not matter.
    assert average_precision([0.6, 0.7, 0.8, 0.9], [0, 1, 0, 1]) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_ap_perfect_and_worst():
    assert average_precision([0.9, 0.8, 0.1], [1, 1, 0]) == pytest.approx(1.0)
    # Positive ranked last of 4: precision 1/4 at recall 1.
    assert average_precision([0.9, 0.8, 0.7, 0.1], [0, 0, 0, 1]) == pytest.approx(0.25)
    assert average_precision([0.3, 0.2], [1, 1]) == pytest.approx(1.0)


def test_ap_ties_form_one_threshold():
    # Scores 0.5, 0.5 tie (one +, one -): precision 1/2 at recall 1/2, then 2/3 at 1.
    expected = 0.5 * 0.5 + 0.5 * 2 / 3
    assert average_precision([0.5, 0.5, 0.2], [1, 0, 1]) == pytest.approx(expected)
    assert average_precision([0.5, 0.5, 0.2], [0, 1, 1]) == pytest.approx(expected)
    # All scores equal: AP = prevalence.
    assert average_precision([0.1] * 5, [1, 0, 0, 1, 0]) == pytest.approx(0.4)


def test_class_without_positives_is_nan_and_excluded_from_map():
    assert math.isnan(average_precision([0.2, 0.4], [0, 0]))
    scores = np.array([[0.9, 0.1, 0.5], [0.8, 0.2, 0.4], [0.7, 0.3, 0.3], [0.6, 0.4, 0.2]])
    targets = np.array([[1, 0, 0], [0, 0, 0], [1, 0, 0], [0, 0, 1]])
    ap = average_precision_per_class(scores, targets)
    assert ap[0] == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert math.isnan(ap[1])
    assert ap[2] == pytest.approx(0.25)
    assert mean_average_precision(scores, targets) == pytest.approx((ap[0] + ap[2]) / 2)
    assert math.isnan(mean_average_precision(scores, np.zeros_like(targets)))


def test_accepts_tensors_and_checks_shapes():
    s, t = torch.tensor([[0.9], [0.1]]), torch.tensor([[1.0], [0.0]])
    assert mean_average_precision(s, t) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        mean_average_precision(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError):
        average_precision([0.1, 0.2], [1])


def test_matches_brute_force_definition():
    """AP = mean over positives of the precision at that positive's threshold."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        s = rng.integers(0, 6, 30) / 5.0   # many ties
        t = rng.random(30) < 0.3
        if not t.any():
            continue
        brute = np.mean([(t & (s >= s[i])).sum() / (s >= s[i]).sum() for i in np.nonzero(t)[0]])
        assert average_precision(s, t) == pytest.approx(brute)
