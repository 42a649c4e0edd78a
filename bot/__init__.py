"""The Discord bot: live classification, storage, tagging, commands and weekly summaries."""
