"""Reinforcement-learned re-ranking: a simulated user session environment and its agents."""
