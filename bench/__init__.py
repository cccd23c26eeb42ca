"""`make bench`: the collect job against the collectors people write instead, side by side on the emulator."""
