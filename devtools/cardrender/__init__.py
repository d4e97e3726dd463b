"""Card previews: xtap-watch's Adaptive Cards rendered by the official JS renderer."""
