"""``collage`` synthesizer (default, needs no weights): copy source pixels under each placed mask.

Each canvas pixel belongs to one placement (``Composition.source``); its colour is the pixel of
that placement's bank image (resized to the canvas, bilinear) at the inverse-transformed
position (nearest, clipped to the image). Nearest-label fill can send a pixel outside its
mask; it then takes the nearest source pixel inside the mask, so only pixels under the chosen
mask are ever copied (no other object leaks in). Seams (pixels whose 4-neighbourhood holds
another placement, dilated by ``SEAM_RADIUS_PX``) are replaced by a Gaussian blur (sigma
``SEAM_SIGMA_PX``) of the collage, so region borders are softened but interiors keep their
texture. Deterministic: no randomness.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.spatial import cKDTree

from reference_pipeline.bank import MaskBank
from reference_pipeline.compose import Composition
from trecs_eval.features.decode import decode_rgb

SEAM_RADIUS_PX = 2
SEAM_SIGMA_PX = 1.5
IMAGE_CACHE_SIZE = 512  # bank images kept decoded (about 100 MB at 256×256)


class CollageSynthesizer:
    """Collage of bank pixels; keeps an LRU cache of bank images resized to the canvas size."""

    def __init__(self, bank: MaskBank, cache_size: int = IMAGE_CACHE_SIZE) -> None:
        self.bank = bank
        self._cache: OrderedDict[tuple[int, int, int], np.ndarray] = OrderedDict()
        self._trees: OrderedDict[tuple[int, int, int], tuple[cKDTree, np.ndarray, np.ndarray]] = OrderedDict()
        self._cache_size = cache_size

    def source_image(self, image_index: int, size: tuple[int, int]) -> np.ndarray:
        """Bank image as H×W×3 uint8 at canvas ``size=(H, W)`` (bilinear resize when needed)."""
        key = (image_index, *size)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        path: Path = self.bank.image_path(image_index)
        rgb = Image.fromarray(decode_rgb(path))  # any mode; a bad file is an InputError naming it
        if rgb.size != (size[1], size[0]):
            rgb = rgb.resize((size[1], size[0]), Image.BILINEAR)
        array = np.asarray(rgb, dtype=np.uint8)
        self._cache[key] = array
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return array

    def nearest_in_mask(self, mask_index: int, size: tuple[int, int], rows: np.ndarray,
                        cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For source pixels (rows, cols), the nearest pixel inside the mask (Euclidean; ties: any).

        The nearest mask pixel of an outside point lies on the mask's boundary, so a k-d tree of
        the boundary pixels answers it (much cheaper than a full distance transform).
        """
        key = (mask_index, *size)
        if key in self._trees:
            self._trees.move_to_end(key)
        else:
            mask = self.bank.mask(mask_index, size)
            br, bc = np.nonzero(mask & ~ndimage.binary_erosion(mask))
            self._trees[key] = (cKDTree(np.stack([br, bc], axis=1)), br, bc)
            if len(self._trees) > self._cache_size:
                self._trees.popitem(last=False)
        tree, br, bc = self._trees[key]
        _, nearest = tree.query(np.stack([rows, cols], axis=1))
        return br[nearest], bc[nearest]

    def __call__(self, comp: Composition) -> np.ndarray:
        """H×W×3 uint8 collage for a composition."""
        height, width = comp.labels.shape
        out = np.zeros((height, width, 3), dtype=np.uint8)
        flat = comp.source.ravel()
        order = np.argsort(flat, kind="stable")
        indices, starts = np.unique(flat[order], return_index=True)
        for index, pixels in zip(indices, np.split(order, starts[1:]), strict=True):
            placement = comp.placements[int(index)]
            rows, cols = np.divmod(pixels, width)
            src_r = np.clip(np.floor(placement.source_coords(0, rows)).astype(np.int64), 0, height - 1)
            src_c = np.clip(np.floor(placement.source_coords(1, cols)).astype(np.int64), 0, width - 1)
            outside = ~self.bank.mask(placement.mask_index, (height, width))[src_r, src_c]
            if outside.any():
                # Canvas pixels filled by nearest label map outside the mask: take the nearest
                # source pixel under the mask, so no other object's pixels leak in.
                src_r[outside], src_c[outside] = self.nearest_in_mask(
                    placement.mask_index, (height, width), src_r[outside], src_c[outside])
            image = self.source_image(self.bank.masks[placement.mask_index].image_index, (height, width))
            out[rows, cols] = image[src_r, src_c]
        return blend_seams(out, comp.source)


def blend_seams(image: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Replace pixels within ``SEAM_RADIUS_PX`` of a source boundary by a Gaussian-blurred collage."""
    seam = np.zeros(source.shape, dtype=bool)
    seam[1:, :] |= source[1:, :] != source[:-1, :]
    seam[:-1, :] |= source[1:, :] != source[:-1, :]
    seam[:, 1:] |= source[:, 1:] != source[:, :-1]
    seam[:, :-1] |= source[:, 1:] != source[:, :-1]
    if not seam.any():
        return image
    seam = ndimage.binary_dilation(seam, iterations=SEAM_RADIUS_PX)
    # truncate=2: a 7-tap kernel at sigma 1.5 (the tails beyond 2 sigma add nothing visible at seams)
    blurred = ndimage.gaussian_filter(image.astype(np.float32), sigma=(SEAM_SIGMA_PX, SEAM_SIGMA_PX, 0),
                                      truncate=2.0)
    out = image.copy()
    out[seam] = np.clip(np.rint(blurred[seam]), 0, 255).astype(np.uint8)
    return out
