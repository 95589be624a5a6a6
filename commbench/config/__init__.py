"""The sweep's settings: the validated model, the flags made from it, serving models and presets."""
