"""Application services: one per step of the day, returning reports."""
