"""Bot extensions (one cog per feature)."""
