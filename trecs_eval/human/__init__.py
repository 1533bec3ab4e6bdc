"""Human side-by-side studies: plan, power, serve, export/import, analyze.

A *study folder* (written once by :func:`trecs_eval.human.plan.plan_study`) holds everything a
study needs: ``study.json`` (items, questions, systems, the assignment of tasks to raters, attention
checks and repeats), ``study.hash`` (sha256 of ``study.json``), ``images/`` (content-addressed copies
of every image shown), ``raters.json`` (the secret link token of each rater, kept out of the hash)
and, once judging starts, ``judgments.sqlite`` (SQLite in WAL mode). See docs/human-studies.md.
"""
