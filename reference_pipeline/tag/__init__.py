"""Taggers: words -> COCO-Stuff labels (HMM with IBM Model 1 emissions, neural, baselines)."""
