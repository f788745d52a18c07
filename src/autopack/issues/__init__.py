"""Issues: phase records, the run index, the project backlog and aging.

No silent failure is dropped and no problem is counted twice: counts are of distinct
issue keys; a repeat only adds to `occurrence_count`.
"""
