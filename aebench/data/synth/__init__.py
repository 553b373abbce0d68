"""A synthetic talking-head corpus: ray-cast 3D heads whose mouths follow the phonemes they say.

Each identity is written in the prepared-identity format of :mod:`aebench.data.identity`
(``frames_format: "npy"``), so every method and metric can run offline on it.

Scene and camera convention (the same as :mod:`aebench.data.prepare`)
------------------------------------------------------------------------
OpenCV camera axes: x right, y down, z forward (the viewing direction). The head is an
ellipsoid of radii about 1 fixed at the world origin, its face looking towards -z (towards
the camera). ``poses[i]`` is the camera-to-world matrix of frame ``i``: the camera sits at
``R_i (0, CAM_Y, -CAM_DIST + tiny offsets)`` with ``CAM_Y = 0.3``, ``CAM_DIST = 4.2`` and
``R_i`` a small smooth rotation (yaw/pitch/roll up to 4/3/2 degrees) about the head, i.e.
the head moves in the camera frame. Focal length is ``1.2 * size`` pixels, principal
point the image centre. The torso and neck are
fixed in the *camera* frame (like a real torso that does not follow head rotations), and
the background image is static. Intrinsics are a pinhole ``(focal, cx, cy)`` in pixels;
``near``/``far`` are the camera distance minus/plus 1.5 head radii.

Audio model
-----------
A random phoneme sequence (vowels a/e/i/o/u with their formants F1/F2/F3, nasals m/n,
closures b/p with a release burst, fricatives s/f, pauses) is synthesised source-filter
style: a glottal pulse train at the identity's f0 (with vibrato and jitter) through a
cascade of formant resonators (scaled by the identity's vocal-tract factor), band-passed
noise for fricatives and bursts. Each phoneme carries a mouth target (opening, width,
roundness); targets are smoothed over time (co-articulation) and sampled at frame times,
so the mouth can only be predicted by recognising *which* sound is spoken, not its
loudness.

Ground truth: masks label the ray hits (0 background, 1 head, 2 audio-related lower front
of the face incl. the mouth, 3 torso/neck); landmarks are 68 points in the iBUG layout
placed on the head surface (mouth points follow the opening) and projected exactly.
Besides the prepared-identity files, each identity has ``mouth.npy`` float32 (n, 3), the
per-frame (opening, width, roundness) in [0, 1], and ``phonemes.json``, the list of
``[phoneme, start_s, end_s]`` ("_" = pause): ground truth for lip-sync diagnostics.

Frames are rendered with one ray per pixel centre (no anti-aliasing), which is exactly
what a NeRF renders for that pixel. The settings are recorded in ``meta.json``; an
identity whose seconds/size/seed/index match is not rendered again.

Modules: :mod:`.look` (an identity's drawn appearance and voice), :mod:`.voice` (phonemes,
source-filter speech, the mouth track), :mod:`.scene` (camera poses, ray casting of head,
neck and torso, masks and landmarks), :mod:`.corpus` (writing identities and corpora).
"""

from aebench.data.synth.corpus import make_corpus, make_identity

__all__ = ["make_corpus", "make_identity"]
