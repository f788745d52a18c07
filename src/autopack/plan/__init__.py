"""Plans: the run spec and (later) comprehensive_plan.md parsing into tiers and phases."""
