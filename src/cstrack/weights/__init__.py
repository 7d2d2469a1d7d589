"""Bundled trained weights (safetensors) and their model cards; see `cstrack.models.pretrained`."""
