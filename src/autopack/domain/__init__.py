"""Pure domain model: states, transition tables, rollups, budgets, ids. No I/O."""
