"""Interoperability with the tools data teams already run: Label Studio, Hugging Face ``datasets``,
Argilla and cleanlab.

Each integration reads the other tool's files (or talks to its server) and hands back labelaudit's own
objects (:class:`~labelaudit.dataset.Dataset`, review decisions through
:class:`~labelaudit.review.store.ReviewStore`), so everything downstream works unchanged. Which
third-party packages are imported here, and which are read only through their file formats, is
explained in ``docs/integrations.md``.
"""
