"""Numbers that several stages must agree on."""

# Whisper and Silero VAD expect 16 kHz; live streams, recordings and analysis all run at it, so
# no stage resamples another's audio.
RATE_HZ = 16_000
