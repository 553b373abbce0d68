"""The NeRF engine shared by every NeRF method, and the AE-NeRF method built on it."""
