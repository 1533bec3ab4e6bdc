"""Taggers: words -> COCO-Stuff labels (HMM with IBM Model 1 emissions, neural, baselines).

    from reference_pipeline.tag import train_tagger, save_tagger, load_tagger
    tagger = train_tagger("hmm", words, tags, seed=0)
    tagger.tag(["a", "dog", "on", "grass"], allowed_labels={"dog", "grass"})
"""

from reference_pipeline.tag.api import TAGGER_KINDS, TaggerKind, load_tagger, save_tagger, train_tagger
from reference_pipeline.tag.base import Tagger

__all__ = ["TAGGER_KINDS", "Tagger", "TaggerKind", "load_tagger", "save_tagger", "train_tagger"]
