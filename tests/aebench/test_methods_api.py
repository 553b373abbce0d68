import numpy as np

from aebench.method_api import driving_pose_indices as pose_indices


def test_pose_indices_mirror():
    assert pose_indices(4, 10).tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]
    assert pose_indices(1, 3).tolist() == [0, 0, 0]
    assert np.array_equal(pose_indices(5, 5), np.arange(5))
