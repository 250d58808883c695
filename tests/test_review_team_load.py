"""Several reviewers at once through the Review page's queue logic: nothing lost, nothing twice.

The small version of ``bench/bench_team_load.py`` (10 reviewers x 1,000 items against PostgreSQL):
3 reviewers in threads on SQLite and PostgreSQL.
"""

from __future__ import annotations

from bench.bench_team_load import run_load


def test_three_reviewers_at_once_lose_and_duplicate_nothing(db_url):
    r = run_load(db_url, reviewers=3, per_reviewer=24, overlap=0.25, processes=False)
    assert r.items == 58 and r.overlap_items == 14
    assert r.lost == 0 and r.duplicated == 0 and r.not_saved == 0
    assert r.reviews == r.items + r.overlap_items  # every slot reviewed once
    assert r.consensus + r.waiting_for_lead == r.overlap_items
    # a page rereading current() throughout saw exactly what a full read sees at the end
    assert r.cache_consistent and r.cache_reads > 0
