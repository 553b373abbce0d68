"""Head pose from 2D landmarks: PnP against a generic 3D face template.

Template: the 14-point anthropometric mean face used by lincolnhard/head-pose-estimation
(``video_test_shape.cpp``), whose source is the ISR Coimbra anthropometric 3D head model
(http://aifi.isr.uc.pt/Downloads/OpenGL/glAnthropometric3DModel.cpp), units ~cm. Its
axes are x to the subject's right (image left), y up, z out of the face; we negate all
three, which gives OpenCV-style head axes (x image right, y down, z away from the camera)
and a right-handed frame, so a frontal head has rotation ~identity. Only stable points
are used by default (brows, eye corners, nostrils: ``prepare.pnp_points``); the mouth
points are listed for completeness but move with speech.

Convention (shared with the synthetic corpus and the NeRF engine): OpenCV camera axes;
``poses[i]`` is camera-to-world with the head fixed at the world origin, i.e. the inverse
of PnP's world-to-camera ``[R|t]``. Template units are scaled by ``template_scale`` so
the head is ~1 unit ear to ear.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation

# dlib 68-point index -> template point (x, y, z) in the model's own axes (see docstring).
TEMPLATE_MODEL = {
    17: (6.825897, 6.760612, 4.402142),
    21: (1.330353, 7.122144, 6.903745),
    22: (-1.330353, 7.122144, 6.903745),
    26: (-6.825897, 6.760612, 4.402142),
    36: (5.311432, 5.485328, 3.987654),
    39: (1.789930, 5.393625, 4.413414),
    42: (-1.789930, 5.393625, 4.413414),
    45: (-5.311432, 5.485328, 3.987654),
    31: (2.005628, 1.409845, 6.165652),
    35: (-2.005628, 1.409845, 6.165652),
    48: (2.774015, -2.080775, 5.048531),
    54: (-2.774015, -2.080775, 5.048531),
    57: (0.000000, -3.116408, 6.097667),
    8: (0.000000, -7.415691, 4.070434),
}


def template(indices, scale: float) -> np.ndarray:
    """(k, 3) template points in OpenCV head axes and world units for dlib ``indices``."""
    missing = [i for i in indices if i not in TEMPLATE_MODEL]
    if missing:
        raise ValueError(f"prepare.pnp_points {missing} are not in the 3D template; valid: {sorted(TEMPLATE_MODEL)}")
    return -np.array([TEMPLATE_MODEL[i] for i in indices], np.float64) * scale


def focal_from_fov(size: int, fov_deg: float) -> float:
    """Focal length in pixels for a square image of ``size`` px and field of view ``fov_deg``."""
    return 0.5 * size / np.tan(np.radians(fov_deg) / 2)


def solve_poses(landmarks: np.ndarray, K: np.ndarray, indices, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame world-to-camera (rotvecs (n, 3), translations (n, 3)) and reprojection error (n,) px."""
    obj = template(indices, scale)
    rvecs, tvecs, errs = [], [], []
    guess = None
    for lm in landmarks:
        img = lm[list(indices)].astype(np.float64)
        if guess is None:
            ok, r, t = cv2.solvePnP(obj, img, K, None, flags=cv2.SOLVEPNP_EPNP)
            ok, r, t = cv2.solvePnP(obj, img, K, None, r, t, True, cv2.SOLVEPNP_ITERATIVE)
        else:  # start from the previous frame: stable and avoids the mirror solution
            ok, r, t = cv2.solvePnP(obj, img, K, None, guess[0].copy(), guess[1].copy(), True, cv2.SOLVEPNP_ITERATIVE)
        if not ok:
            raise RuntimeError("cv2.solvePnP failed")
        guess = (r, t)
        proj, _ = cv2.projectPoints(obj, r, t, K, None)
        errs.append(float(np.linalg.norm(proj.reshape(-1, 2) - img, axis=1).mean()))
        rvecs.append(r.ravel())
        tvecs.append(t.ravel())
    return np.array(rvecs), np.array(tvecs), np.array(errs)


def smooth_poses(rvecs: np.ndarray, tvecs: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian smoothing over time: rotations as rotvecs relative to their mean rotation."""
    if sigma <= 0 or len(rvecs) < 2:
        return rvecs, tvecs
    rots = Rotation.from_rotvec(rvecs)
    mean = rots.mean()
    rel = (mean.inv() * rots).as_rotvec()
    rel = gaussian_filter1d(rel, sigma, axis=0, mode="nearest")
    return (mean * Rotation.from_rotvec(rel)).as_rotvec(), gaussian_filter1d(tvecs, sigma, axis=0, mode="nearest")


def camera_to_world(rvecs: np.ndarray, tvecs: np.ndarray) -> np.ndarray:
    """(n, 4, 4) float32 camera-to-world = inverse of world-to-camera [R|t]."""
    R = Rotation.from_rotvec(rvecs).as_matrix()
    c2w = np.tile(np.eye(4), (len(R), 1, 1))
    c2w[:, :3, :3] = R.transpose(0, 2, 1)
    c2w[:, :3, 3] = -np.einsum("nji,nj->ni", R, tvecs)
    return c2w.astype(np.float32)


def near_far(tvecs: np.ndarray, radius: float) -> tuple[float, float]:
    """Bounds enclosing a head of ``radius`` around the origin at every frame's depth."""
    depth = np.linalg.norm(tvecs, axis=1)
    return float(max(depth.min() - radius, 1e-2)), float(depth.max() + radius)
