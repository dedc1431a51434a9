"""Joint follow-up: counts a Backa barnet steering group can see, identifying no child."""
