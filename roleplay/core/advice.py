"""The advice items of the guide (section 2), in the guide's order: the ids that reports, scores
and history use."""

ADVICE_IDS = (
    "greeting", "stay-calm", "slower-softer", "breathe", "let-vent", "no-interrupt", "no-discussion",
    "positive", "silence", "concrete", "warm-transfer", "address-behaviour", "announce-end", "debrief",
)
